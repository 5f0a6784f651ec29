"""`make run`, the README's front door: on a machine with redis-server it brings up the whole
system, the Procfile with the development overlays on top (Procfile.dev's own Redis included, the
worker and Beat started once it is ready); without it, it says what to install."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.formation import REPO, http, post_json
from tests.app.redisserver import free_port
from tests.harness import children_of, wait_for_state

DEADLINE_SECONDS = 30.0
# The venv running these tests, whatever its name; -o keeps make from reinstalling it.
VENV = Path(sys.executable).parent.parent
MAKE_RUN = ["make", f"VENV={VENV}", "-o", f"{VENV}/bin/procrun", "run"]


class Make:
    """`make run` with its output read line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            MAKE_RUN,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for_line(self, pattern: str) -> None:
        regex = re.compile(pattern)
        if any(regex.search(line) for line in self.seen):
            return
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if regex.search(line):
                return

    def index_of(self, pattern: str) -> int:
        """Where the first line matching `pattern` came in make's output (waiting for it)."""
        self.wait_for_line(pattern)
        regex = re.compile(pattern)
        return next(i for i, line in enumerate(self.seen) if regex.search(line))

    def close(self) -> None:
        if self.proc.poll() is None:
            for pid in children_of(self.proc.pid):
                os.kill(pid, signal.SIGKILL)
            self.proc.kill()
        self.proc.wait()
        self._reader.join(DEADLINE_SECONDS)  # it ends at make's end of output
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="prs-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_make_run_brings_up_web_worker_beat_and_redis(socket_dir: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PROCRUN_", "MAKE"))},
        "PORT": str(port),
        "REDIS_PORT": str(free_port()),
        "PROCRUN_SOCKET": str(socket_dir / "procrun.sock"),
        "WEB_CONCURRENCY": "1",
        "CELERY_CONCURRENCY": "1",
        "NO_COLOR": "1",
    }
    make = Make(env)
    try:
        make.wait_for_line(r"redis\.1 .*Ready to accept connections")
        make.wait_for_line(rf"web\.1 .*Listening at: http://0\.0\.0\.0:{port}\b")
        make.wait_for_line(r"worker\.1 .*celery@\S+ ready")
        make.wait_for_line(r"beat\.1 .*beat: Acquired lock")
        # procrun.dev.toml: the worker and Beat depend on Procfile.dev's redis, whose readiness
        # is its own "Ready to accept connections" line; the lines come in the order procrun
        # wrote them.
        redis_ready = make.index_of(r"process\.ready .*process=redis\.1\b")
        for name in ("worker", "beat"):
            spawned = make.index_of(rf"process\.spawned .*process={name}\.1\b")
            assert redis_ready < spawned, f"{name}.1 started before redis.1 was ready"
        base = f"http://127.0.0.1:{port}"
        assert http("GET", f"{base}/health").status == 200
        job = post_json(f"{base}/jobs", {"seconds": 0, "job_id": "from-make-run"})
        assert job.status == 202

        def done() -> bool:
            return bool(http("GET", f"{base}/jobs/from-make-run").body["state"] == "SUCCESS")

        wait_for_state(done, "the job submitted to make run's formation")
        (procrun,) = children_of(make.proc.pid)  # the recipe execs procrun: no shell between
        assert "procrun" in Path(f"/proc/{procrun}/cmdline").read_text()
        os.kill(procrun, signal.SIGTERM)
        assert make.proc.wait(DEADLINE_SECONDS) == 0, "\n".join(make.seen)
    finally:
        make.close()


def test_make_run_without_redis_server_says_what_to_install() -> None:
    # No PATH: redis-server cannot be found (make and its shell are run by absolute path).
    result = subprocess.run(
        [shutil.which("make") or "make", *MAKE_RUN[1:]],
        cwd=REPO,
        env={"PATH": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    assert result.returncode != 0
    assert "apt-get install redis-server" in result.stderr
    assert "brew install redis" in result.stderr

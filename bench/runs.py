"""One run of one tool on one formation, from a fresh directory to nothing left running.

`launch()` writes the tool's files into a new short temporary directory (Unix socket paths are
limited to about 104 bytes), starts the tool in a session of its own with a marker in its
environment, and in `finally` kills the launched group and every process that carries the
marker, so no child, grandchild or adopted daemon outlives the run, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from bench import procfs
from bench.observe import Launched
from bench.tools import Program, Setup, Tool

MARKER_VARIABLE = "PROCRUN_BENCH_RUN"
# Every run's marker starts with this invocation's, so that the final sweep (bench/__main__.py)
# kills what this benchmark left, not the runs of another benchmark on the same machine.
SESSION = uuid.uuid4().hex[:12]
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Sizes:
    """How big and how often; the full run and the smoke run differ only here."""

    reps: int
    relay_lines: int
    grace_seconds: float
    restart_window_seconds: float
    idle_seconds: float
    status_calls: int
    scale_count: int


FULL = Sizes(
    reps=5,
    relay_lines=200_000,
    grace_seconds=2.0,
    restart_window_seconds=10.0,
    idle_seconds=20.0,
    status_calls=3,
    scale_count=200,
)
SMOKE = Sizes(
    reps=1,
    relay_lines=2_000,
    grace_seconds=1.0,
    restart_window_seconds=2.0,
    idle_seconds=3.0,
    status_calls=1,
    scale_count=20,
)


LEFTOVERS: list[int] = []
"""Processes that survived a run's cleanup, for the whole benchmark (there should be none)."""


class Stopped(NamedTuple):
    sent: float  # the SIGTERM, on the benchmark's monotonic clock
    last_child: float
    exited: float


class RunFailed(Exception):
    """A run did not reach the state it waits for; the message says which and shows stderr."""


@dataclass
class Run:
    tool: Tool
    setup: Setup
    workdir: Path
    env: dict[str, str]
    launched: Launched

    def wait_for(
        self, what: str, until: Callable[[], bool], timeout: float = STARTUP_TIMEOUT_SECONDS
    ) -> None:
        if not self.launched.pump(until, timeout):
            raise RunFailed(f"{self.tool.name}: timed out waiting for {what}\n{self.diagnostics()}")

    def wait_ready(self, count: int) -> dict[bytes, float]:
        """Wait until `count` distinct processes printed their `READY <id> <pid>` line;
        pid -> arrival time."""
        ready = self.launched.output.matches(rb"READY \S+ (\d+)")
        self.wait_for(f"{count} ready lines", lambda: len(ready.distinct()) >= count)
        return ready.distinct()

    def wait_settled(self, count: int) -> None:
        """Wait until the tool itself reports `count` processes in their running state."""
        settled = self.launched.output.matches(self.setup.settled)
        self.wait_for(f"{count} running states", lambda: len(settled.distinct()) >= count)

    def stop(self) -> None:
        if not self.launched.stop(STOP_TIMEOUT_SECONDS):
            raise RunFailed(f"{self.tool.name}: did not exit after SIGTERM\n{self.diagnostics()}")

    def timed_stop(self, children: Sequence[int]) -> Stopped:
        """SIGTERM to the tool, each of `children` watched by a pidfd: when it was sent, when
        the last child ended and when the tool exited."""
        for pid in children:
            self.launched.watch_exit(pid)
        sent = self.launched.signal(signal.SIGTERM)
        self.stop()
        exited = self.launched.exited_at
        assert exited is not None
        last_child = max(self.launched.exits[pid] or sent for pid in children)
        return Stopped(sent, last_child, exited)

    def usage(self) -> procfs.Usage:
        return procfs.usage(self.launched.pid, self.tool.helpers)

    def status(self) -> tuple[float, int]:
        assert self.setup.status_argv is not None
        return self.launched.run_client(self.setup.status_argv, self.workdir, self.env)

    def diagnostics(self) -> str:
        stderr = (self.workdir / "stderr").read_bytes()[-2000:].decode(errors="replace")
        stdout = self.launched.output.data()[-2000:].decode(errors="replace")
        return f"--- stdout (tail)\n{stdout}\n--- stderr (tail)\n{stderr}"


def _environment(marker: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCRUN_", "SUPERVISOR_"))}
    env.update({MARKER_VARIABLE: marker, "NO_COLOR": "1"})
    return env


@contextlib.contextmanager
def launch(tool: Tool, programs: list[Program]) -> Iterator[Run]:
    workdir = Path(tempfile.mkdtemp(prefix="pb-"))
    marker = f"{SESSION}-{uuid.uuid4().hex}"
    env = _environment(marker)
    launched: Launched | None = None
    try:
        setup = tool.setup(workdir, programs)
        launched = Launched(setup.argv, cwd=workdir, env=env, stderr_path=workdir / "stderr")
        yield Run(tool, setup, workdir, env, launched)
    finally:
        if launched is not None:
            launched.close()
        LEFTOVERS.extend(procfs.kill_marked(f"{MARKER_VARIABLE}={marker}"))
        shutil.rmtree(workdir, ignore_errors=True)

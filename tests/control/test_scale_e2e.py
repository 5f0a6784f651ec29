"""`procrun scale` against a real `procrun start`: real socket, real children, real signals.

The worker child prints its PS and PORT when it starts and records the stop signals it gets; it
exits once a trigger file exists, so a test can look at a stop under way for as long as it needs
and then let it end (the child polls the file; the test never waits for time to pass).
"""

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakecontrol import short_temp_dir
from tests.harness import Procrun, child, client_command, wait_until_dead, write_script

RECORDER = Path(__file__).parents[1] / "children" / "recorder.py"
CRASHER = Path(__file__).parents[1] / "children" / "crasher.py"
WORKER = """
import os, pathlib, signal, sys, time
trigger = pathlib.Path(sys.argv[1])

def on_signal(signum, frame):
    print(f"{os.environ['PS']} got {signal.Signals(signum).name}", flush=True)
    while not trigger.exists():
        time.sleep(0.01)
    sys.exit(0)

signal.signal(signal.SIGTERM, on_signal)
print(f"ready pid={os.getpid()} ps={os.environ['PS']} port={os.environ['PORT']}", flush=True)
while True:
    time.sleep(3600)
"""
NOTE = "these counts last until procrun stops (to keep them: -c, or count in procrun.toml)"


@pytest.fixture
def socket_path() -> Iterator[Path]:
    with short_temp_dir() as directory:
        yield directory / "control.sock"


def procrun(*args: str, cwd: Path, socket: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PROCRUN_SOCKET": str(socket), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "procrun", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def rows(cwd: Path, socket: Path) -> dict[str, dict[str, Any]]:
    """`procrun status --json`: each process's row by name, in the order status lists them."""
    status = procrun("status", "--json", cwd=cwd, socket=socket)
    assert status.returncode in (0, 3), status.stderr
    return {row["name"]: row for row in json.loads(status.stdout)["processes"]}


def ready_pid(running: Procrun, name: str, port: int) -> int:
    """The pid of `name` once it says it runs, with the PS and PORT it got."""
    line = rf"{re.escape(name)} +\| ready pid=(\d+) ps={re.escape(name)} port={port}$"
    return int(running.wait_for_line(line).group(1))


def test_one_worker_to_three_and_back_to_one(tmp_path: Path, socket_path: Path) -> None:
    trigger = tmp_path / "exit-now"
    worker = write_script(tmp_path, "worker.py", WORKER)
    procfile = f"web: {child(RECORDER)}\nworker: {child(worker, str(trigger))}\n"
    toml = '[processes.worker]\nmin_uptime = "60s"\n'  # STARTING for as long as the test looks
    root = tmp_path.resolve()
    env = {"PROCRUN_SOCKET": str(socket_path)}
    with Procrun(tmp_path, procfile, toml=toml, env=env) as running:
        first = ready_pid(running, "worker.1", 5100)
        running.wait_for_line(r"web.1 +\| leader \d+ ready")

        up = procrun("scale", "worker=3", cwd=tmp_path, socket=socket_path)
        assert up.returncode == 0, up.stderr
        assert up.stdout.splitlines() == [
            f"worker: 1 -> 3 (started worker.2, worker.3) ({root})",
            NOTE,
        ]
        status = rows(tmp_path, socket_path)
        assert list(status) == ["web.1", "worker.1", "worker.2", "worker.3"]
        assert [status[f"worker.{i}"]["state"] for i in (1, 2, 3)] == ["STARTING"] * 3
        assert status["worker.2"]["reason"] == "scaled up"
        # The PORTs the formation gives the 2nd and 3rd worker (5000 + 100 x position + n - 1).
        second, third = ready_pid(running, "worker.2", 5101), ready_pid(running, "worker.3", 5102)
        running.wait_for_line(r"formation.scaled .*after=3 before=1 .*type=worker")

        down = client_command(socket_path, "scale", "worker=1")  # answers once they stopped
        running.wait_for_line(r"worker.3 +\| worker.3 got SIGTERM")
        running.wait_for_line(r"worker.2 +\| worker.2 got SIGTERM")
        status = rows(tmp_path, socket_path)
        assert list(status) == ["web.1", "worker.1", "worker.2", "worker.3"]
        for name in ("worker.2", "worker.3"):
            state, reason = status[name]["state"], status[name]["reason"]
            assert state == "STOPPING"
            # Their own stop sequence: a Celery worker's, QUIT 10 s before the end of its 600 s.
            plan = re.fullmatch(r"scaled down; SIGQUIT in (\d+) s, SIGKILL in (\d+) s", reason)
            assert plan is not None, reason
            quit_in, kill_in = int(plan.group(1)), int(plan.group(2))
            assert 580 < quit_in <= 590, reason
            assert kill_in == quit_in + 10, reason
        assert down.poll() is None, "the reply waits for the graceful stops"
        trigger.touch()
        out, err = down.communicate(timeout=30)
        assert (down.returncode, err) == (0, "")
        assert out.splitlines() == [f"worker: 3 -> 1 (stopped worker.3, worker.2) ({root})", NOTE]
        wait_until_dead(second)
        wait_until_dead(third)

        status = rows(tmp_path, socket_path)
        assert list(status) == ["web.1", "worker.1"]
        assert status["worker.1"]["pid"] == first, "worker.1 untouched"
        running.wait_for_line(r"process.removed +process=worker.3 reason='scaled down'")
        running.wait_for_line(r"process.removed +process=worker.2 reason='scaled down'")
        assert "got SIGTERM" not in "\n".join(line for line in running.lines if "worker.1" in line)
        assert "SIGKILL" not in running.transcript(), "they exited gracefully"
        running.signal(signal.SIGTERM)
        assert running.wait() == 0


def test_scale_to_zero_and_back_up(tmp_path: Path, socket_path: Path) -> None:
    """A type goes to 0 and comes back numbered from 1; with every type at 0 procrun stays up."""
    trigger = tmp_path / "exit-now"
    trigger.touch()  # the workers exit at once on TERM
    worker = write_script(tmp_path, "worker.py", WORKER)
    procfile = f"web: {child(RECORDER)}\nworker: {child(worker, str(trigger))}\n"
    root = tmp_path.resolve()
    env = {"PROCRUN_SOCKET": str(socket_path)}
    with Procrun(tmp_path, procfile, "-c", "worker=2", env=env) as running:
        web = int(running.wait_for_line(r"web.1 +\| leader (\d+) ready").group(1))
        ready_pid(running, "worker.1", 5100)
        ready_pid(running, "worker.2", 5101)

        down = procrun("scale", "worker=0", cwd=tmp_path, socket=socket_path)
        assert down.returncode == 0, down.stderr
        assert (
            down.stdout.splitlines()[0] == f"worker: 2 -> 0 (stopped worker.2, worker.1) ({root})"
        )
        assert list(rows(tmp_path, socket_path)) == ["web.1"]

        up = procrun("scale", "worker=2", cwd=tmp_path, socket=socket_path)
        assert up.returncode == 0, up.stderr
        assert up.stdout.splitlines()[0] == f"worker: 0 -> 2 (started worker.1, worker.2) ({root})"
        ready_pid(running, "worker.1", 5100)
        ready_pid(running, "worker.2", 5101)
        assert list(rows(tmp_path, socket_path)) == ["web.1", "worker.1", "worker.2"]

        same = procrun("scale", "worker=2", cwd=tmp_path, socket=socket_path)
        assert same.stdout.splitlines() == [f"worker: 2 -> 2 (unchanged) ({root})"]

        nothing = procrun("scale", "web=0", "worker=0", cwd=tmp_path, socket=socket_path)
        assert nothing.returncode == 0, nothing.stderr
        assert rows(tmp_path, socket_path) == {}, "nothing left, and procrun still answers"
        again = procrun("scale", "web=1", cwd=tmp_path, socket=socket_path)
        assert again.stdout.splitlines()[0] == f"web: 0 -> 1 (started web.1) ({root})"
        back = running.wait_for_line(r"web.1 +\| leader (\d+) ready .*env_port=5000")
        assert int(back.group(1)) != web
        running.signal(signal.SIGTERM)
        assert running.wait() == 0


def test_bad_scales_say_what_is_wrong_and_change_nothing(tmp_path: Path, socket_path: Path) -> None:
    procfile = (
        f"release: {child(CRASHER, '0')}\nweb: {child(RECORDER)}\nworker: {child(RECORDER)}\n"
    )
    env = {"PROCRUN_SOCKET": str(socket_path)}
    with Procrun(tmp_path, procfile, env=env) as running:
        running.wait_for_line(r"worker.1 +\| leader \d+ ready")
        before = rows(tmp_path, socket_path)
        cases = [
            (["wrker=2"], 1, 'unknown process "wrker"; did you mean "worker"?'),
            (["release=1"], 1, '"release" runs only when procrun starts'),
            (["worker=2", "nope=1"], 1, 'unknown process "nope"'),
            (["worker=x"], 2, 'scale: count for "worker" must be a whole number from 0 to 1000'),
            (["worker=-1"], 2, 'count for "worker" must be a whole number from 0 to 1000, got -1'),
            (["worker=1001"], 2, "from 0 to 1000, got 1001"),
            (["worker"], 2, 'scale: expected "<type>=<count>", e.g. worker=3, got "worker"'),
            (["worker.2=1"], 2, '"worker.2" is an instance: scale takes process types'),
            (["worker=1", "worker=2"], 2, 'scale: "worker" is given twice'),
        ]
        for args, code, message in cases:
            result = procrun("scale", *args, cwd=tmp_path, socket=socket_path)
            assert (result.returncode, result.stdout) == (code, ""), (args, result.stderr)
            assert result.stderr.startswith("procrun: "), args
            assert message in result.stderr, args
            assert len(result.stderr.splitlines()) == 1, result.stderr
        after = rows(tmp_path, socket_path)
        assert [(r["name"], r["pid"]) for r in after.values()] == [
            (r["name"], r["pid"]) for r in before.values()
        ], "nothing was started or stopped, not even worker=2 of a request with a bad name"
        running.signal(signal.SIGTERM)
        assert running.wait() == 0


def test_scaling_while_shutting_down_is_refused(tmp_path: Path, socket_path: Path) -> None:
    trigger = tmp_path / "exit-now"
    worker = write_script(tmp_path, "worker.py", WORKER)
    env = {"PROCRUN_SOCKET": str(socket_path)}
    with Procrun(tmp_path, f"worker: {child(worker, str(trigger))}\n", env=env) as running:
        ready_pid(running, "worker.1", 5000)
        running.signal(signal.SIGTERM)
        running.wait_for_line(r"worker.1 +\| worker.1 got SIGTERM")  # the shutdown is under way
        refused = procrun("scale", "worker=2", cwd=tmp_path, socket=socket_path)
        assert (refused.returncode, refused.stderr) == (1, "procrun: procrun is shutting down\n")
        trigger.touch()
        assert running.wait() == 0
        assert "worker.2" not in running.transcript()


NOTIFIER = """
import os, socket, time
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
print("notified", flush=True)
time.sleep(3600)
"""


def test_an_instance_scaled_down_and_up_again_gets_ready_again(
    tmp_path: Path, socket_path: Path
) -> None:
    """web.2 is a new process the second time, with a notify socket of its own: its READY=1 is
    heard (the first web.2's socket would check the first one's pid)."""
    notifier = write_script(tmp_path, "notifier.py", NOTIFIER)
    toml = "[processes.web]\nready = { notify = true }\n"
    env = {"PROCRUN_SOCKET": str(socket_path)}
    with Procrun(tmp_path, f"web: {child(notifier)}\n", env=env, toml=toml) as running:
        running.wait_for_line(r"process.ready .*process=web.1")
        for count in (2, 1, 2):
            result = procrun("scale", f"web={count}", cwd=tmp_path, socket=socket_path)
            assert result.returncode == 0, result.stderr
            if count == 2:
                running.wait_for_line(r"process.ready .*probe=notify process=web.2")
        assert {name: row["state"] for name, row in rows(tmp_path, socket_path).items()} == {
            "web.1": "RUNNING",
            "web.2": "RUNNING",
        }
        running.signal(signal.SIGTERM)
        assert running.wait() == 0

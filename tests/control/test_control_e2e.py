"""The control commands against a real `procrun start`: real socket, real children."""

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Procrun, child, children_of, wait_until_dead
from tests.test_pid1 import AS_PID1, needs_root

RECORDER = Path(__file__).parents[1] / "children" / "recorder.py"
CRASHER = Path(__file__).parents[1] / "children" / "crasher.py"


def procrun(
    *args: str, cwd: Path, socket: Path, user: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PROCRUN_SOCKET": str(socket), "NO_COLOR": "1"}
    return subprocess.run(
        [*user, sys.executable, "-m", "procrun", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def socket_path() -> Iterator[Path]:
    directory = Path(__import__("tempfile").mkdtemp(prefix="pr-", dir="/tmp"))
    yield directory / "control.sock"
    for leftover in directory.iterdir():
        leftover.unlink()
    directory.rmdir()


@pytest.fixture
def running(tmp_path: Path, socket_path: Path) -> Iterator[Procrun]:
    procfile = (
        f"web: {child(RECORDER)}\n"
        f"worker: {child(RECORDER, '--pool', '1')}\n"
        f"once: {child(CRASHER, '0')}\n"
    )
    toml = "[processes.once]\noneshot = true\n"
    with Procrun(
        tmp_path, procfile, "-c", "worker=2", toml=toml, env={"PROCRUN_SOCKET": str(socket_path)}
    ) as supervisor:
        for _ in range(3):
            supervisor.wait_for_line(r"process.running .*process=(web|worker)")
        supervisor.wait_for_line(r"process.exited .*process=once.1 .*returncode=0")
        yield supervisor
        supervisor.signal(signal.SIGTERM)
        supervisor.wait()


def test_status_table_json_and_health_exit_codes(
    running: Procrun, tmp_path: Path, socket_path: Path
) -> None:
    table = procrun("status", cwd=tmp_path, socket=socket_path)
    assert table.returncode == 0, table.stdout + table.stderr
    header, columns, *rows = table.stdout.splitlines()
    assert f"pid {running.proc.pid}" in header
    assert columns.split()[:3] == ["NAME", "STATE", "PID"]
    states = {row.split()[0]: row.split()[1] for row in rows}
    assert states == {
        "web.1": "RUNNING",
        "worker.1": "RUNNING",
        "worker.2": "RUNNING",
        "once.1": "EXITED",
    }

    status = json.loads(procrun("status", "--json", cwd=tmp_path, socket=socket_path).stdout)
    worker = next(p for p in status["processes"] if p["name"] == "worker.1")
    assert worker["tree_processes"] == 2, "the pool child counts in the tree"
    assert worker["rss_bytes"] > 1_000_000
    assert worker["pid"] in children_of(running.proc.pid)

    assert procrun("stop", "web", cwd=tmp_path, socket=socket_path).returncode == 0
    unhealthy = procrun("status", cwd=tmp_path, socket=socket_path)
    assert unhealthy.returncode == 3
    assert "stopped on request" in unhealthy.stdout


def _essentials(status: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(p["name"], p["state"], p["pid"]) for p in status["processes"]]


def test_plain_status_skips_click_and_answers_as_the_click_command_does(
    running: Procrun, tmp_path: Path, socket_path: Path
) -> None:
    """`procrun status [--json] [NAMES]` (a HEALTHCHECK) is answered without click
    (procrun/cli/entry.py); with any other option (here --socket) click parses the same command."""
    environment = {**os.environ, "PROCRUN_SOCKET": str(socket_path)}
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "procrun", "status"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert traced.returncode == 0, traced.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in traced.stderr.splitlines()}
    assert "procrun.control.client" in imported
    assert "click" not in imported

    via_click = ("--socket", str(socket_path))
    for args in (("status", "--json"), ("status", "--json", "worker", "once")):
        plain = procrun(*args, cwd=tmp_path, socket=socket_path)
        parsed = procrun(*args, *via_click, cwd=tmp_path, socket=socket_path)
        assert plain.returncode == parsed.returncode == 0
        assert _essentials(json.loads(plain.stdout)) == _essentials(json.loads(parsed.stdout))
    plain = procrun("status", "nope", cwd=tmp_path, socket=socket_path)
    parsed = procrun("status", "nope", *via_click, cwd=tmp_path, socket=socket_path)
    assert (plain.returncode, plain.stderr) == (parsed.returncode, parsed.stderr)
    assert plain.returncode == 1
    assert plain.stderr.startswith('procrun: unknown process "nope"')


def test_stop_start_restart_signal_and_logs_reach_the_children(
    running: Procrun, tmp_path: Path, socket_path: Path
) -> None:
    first = int(running.wait_for_line(r"web.1 +\| leader (\d+) ready").group(1))
    stopped = procrun("stop", "web.1", cwd=tmp_path, socket=socket_path)
    assert stopped.stdout.strip() == f"web.1: stopped ({tmp_path.resolve()})"
    running.wait_for_line(rf"leader {first} got SIGTERM")
    wait_until_dead(first)

    started = procrun("start", "web", cwd=tmp_path, socket=socket_path)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == f"web.1: started ({tmp_path.resolve()})"
    second = int(running.wait_for_line(r"web.1 +\| leader (\d+) ready").group(1))
    assert second != first

    assert procrun("restart", "web", cwd=tmp_path, socket=socket_path).returncode == 0
    running.wait_for_line(rf"leader {second} got SIGTERM")
    running.wait_for_line(r"web.1 +\| leader \d+ ready")

    signalled = procrun("signal", "worker.2", "USR1", cwd=tmp_path, socket=socket_path)
    assert signalled.stdout.strip() == "worker.2: delivered"
    running.wait_for_line(r"worker.2 +\| leader \d+ got SIGUSR1")
    assert "pool" not in "".join(s for s in running.lines if "SIGUSR1" in s)
    procrun("signal", "worker.1", "USR1", "--group", cwd=tmp_path, socket=socket_path)
    running.wait_for_line(r"worker.1 +\| pool \d+ got SIGUSR1")

    logs = procrun("logs", "-n", "2", "worker.2", cwd=tmp_path, socket=socket_path)
    assert logs.stdout.splitlines()[-1].endswith("got SIGUSR1"), logs.stdout + running.transcript()
    assert all(line.startswith("worker.2 | ") for line in logs.stdout.splitlines())

    unknown = procrun("stop", "nope", cwd=tmp_path, socket=socket_path)
    assert unknown.returncode == 1
    assert 'unknown process "nope"' in unknown.stderr


def test_no_supervisor_exits_4_naming_the_socket(tmp_path: Path, socket_path: Path) -> None:
    result = procrun("status", cwd=tmp_path, socket=socket_path)
    assert result.returncode == 4
    assert str(socket_path) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_second_supervisor_is_refused_and_a_stale_socket_is_replaced(
    tmp_path: Path, socket_path: Path
) -> None:
    env = {"PROCRUN_SOCKET": str(socket_path)}
    with Procrun(tmp_path, f"web: {child(RECORDER)}\n", env=env) as first:
        first.wait_for_line(r"leader \d+ ready")
        with Procrun(tmp_path, f"web: {child(RECORDER)}\n", env=env) as second:
            assert second.wait() == 1
        assert "another procrun is already running" in second.stderr
        assert "spawned" not in second.transcript(), "nothing may start before the refusal"
        leader = int(first.transcript().split("leader ")[1].split()[0])
        first.proc.kill()  # a crash: the socket file stays behind
        first.proc.wait()
        wait_until_dead(leader)  # the undertaker took the child down too
    assert socket_path.exists()
    with Procrun(tmp_path, f"web: {child(RECORDER)}\n", env=env) as third:
        third.wait_for_line(r"process.running .*process=web.1")
        assert procrun("status", cwd=tmp_path, socket=socket_path).returncode == 0
        third.signal(signal.SIGTERM)
        assert third.wait() == 0
    assert not socket_path.exists(), "a clean exit removes the socket"


@needs_root
def test_another_uid_is_refused_by_peer_credentials(
    running: Procrun, tmp_path: Path, socket_path: Path
) -> None:
    # Open the file modes up so that only the SO_PEERCRED check can refuse the client.
    socket_path.parent.chmod(0o711)
    socket_path.chmod(0o666)
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    # The server may refuse and close before reading the request: its reply is still there.
    client = (
        "import contextlib, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\n"
        "with contextlib.suppress(BrokenPipeError):\n"
        '    s.sendall(b\'{"verb": "status"}\\n\')\n'
        "print(s.makefile().readline())\n"
    )
    result = subprocess.run(
        [*nobody, "/usr/bin/python3", "-c", client, str(socket_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stdout.startswith("{"), result.stdout + result.stderr
    reply = json.loads(result.stdout)
    assert reply["ok"] is False
    assert "uid" in reply["error"]
    running.wait_for_line(r"control.refused .*uid=65534|control.\w+ .*65534")


@needs_root
def test_status_of_a_supervisor_running_as_pid1(tmp_path: Path, socket_path: Path) -> None:
    env = {"PROCRUN_SOCKET": str(socket_path)}
    with Procrun(tmp_path, f"web: {child(RECORDER)}\n", env=env, wrapper=AS_PID1) as supervisor:
        supervisor.wait_for_line(r"process.running .*process=web.1")
        status = procrun("status", "--json", cwd=tmp_path, socket=socket_path)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["supervisor"]["pid"] == 1
        assert procrun("shutdown", cwd=tmp_path, socket=socket_path).returncode == 0
        assert supervisor.wait() == 0


def test_logs_follow_streams_new_lines(running: Procrun, tmp_path: Path, socket_path: Path) -> None:
    follower = subprocess.Popen(
        [sys.executable, "-m", "procrun", "logs", "-f", "-n", "0", "worker.1"],
        cwd=tmp_path,
        env={**os.environ, "PROCRUN_SOCKET": str(socket_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    output = follower.stdout
    assert output is not None

    def read() -> None:
        for item in output:
            lines.put(item)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # Each USR1 makes the worker print a line; repeat until the follower, which subscribes
        # at its own pace, has seen one.
        deadline = time.monotonic() + 20
        line = None
        while line is None and time.monotonic() < deadline:
            procrun("signal", "worker.1", "USR1", cwd=tmp_path, socket=socket_path)
            with contextlib.suppress(queue.Empty):
                line = lines.get(timeout=0.5)
        assert line is not None, "logs -f printed nothing"
        assert line.startswith("worker.1 | leader ")
        assert line.rstrip().endswith("got SIGUSR1")
    finally:
        follower.terminate()
        follower.wait()
        reader.join(5)
        output.close()


def test_a_type_left_out_at_start_can_be_started_later(tmp_path: Path, socket_path: Path) -> None:
    """`procrun start web`, then `procrun start worker`: the worker starts, with the rules of
    `start` (its PORT, PS); starting what runs already says so and exits 0."""
    procfile = f"web: {child(RECORDER)}\nworker: {child(RECORDER)}\n"
    env = {"PROCRUN_SOCKET": str(socket_path)}
    with Procrun(tmp_path, procfile, "web", env=env) as running:
        running.wait_for_line(r"web.1 +\| leader \d+ ready")
        started = procrun("start", "worker", cwd=tmp_path, socket=socket_path)
        assert started.returncode == 0, started.stderr
        assert started.stdout == f"worker.1: started ({tmp_path.resolve()})\n"
        running.wait_for_line(r"worker.1 +\| leader \d+ ready .*env_port=5100")
        again = procrun("start", "web", "worker", cwd=tmp_path, socket=socket_path)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines() == [
            f"web.1: already running ({tmp_path.resolve()})",
            f"worker.1: already running ({tmp_path.resolve()})",
        ]
        unknown = procrun("start", "wrker", cwd=tmp_path, socket=socket_path)
        assert unknown.returncode == 1
        assert 'unknown process "wrker"; did you mean "worker"?' in unknown.stderr
        status = procrun("status", "--json", cwd=tmp_path, socket=socket_path)
        assert [row["name"] for row in json.loads(status.stdout)["processes"]] == [
            "web.1",
            "worker.1",
        ]
        running.signal(signal.SIGTERM)
        assert running.wait() == 0

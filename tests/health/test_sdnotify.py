"""procrun under a manager that speaks sd_notify: the test holds the datagram socket, as systemd
would for `Type=notify`, and reads what procrun sends."""

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakecontrol import short_temp_dir
from tests.harness import DEADLINE_SECONDS, Procrun, child

RECORDER = Path(__file__).parents[1] / "children" / "recorder.py"


@pytest.fixture
def manager() -> Iterator[tuple[socket.socket, Path]]:
    with short_temp_dir() as directory:
        path = directory / "notify"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(path))
            sock.settimeout(DEADLINE_SECONDS)  # a hang guard: each receive waits for a datagram
            yield sock, path


def receive_until(sock: socket.socket, key: str) -> list[dict[str, str]]:
    """Datagrams, parsed, up to and including the first that holds `key`."""
    seen = []
    while True:
        fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())
        seen.append(fields)
        if key in fields:
            return seen


def test_ready_once_everything_runs_then_stopping(
    tmp_path: Path, manager: tuple[socket.socket, Path]
) -> None:
    sock, path = manager
    procfile = (
        f"web: {child(RECORDER)}\n"
        "peek: sh -c 'echo \"notify=[$NOTIFY_SOCKET] watchdog=[$WATCHDOG_USEC]\"; exec sleep 60'\n"
    )
    toml = '[defaults]\nmin_uptime = "300ms"\n'
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}
    with Procrun(tmp_path, procfile, env=env, toml=toml) as procrun:
        before_ready = receive_until(sock, "READY")
        ready = before_ready[-1]
        assert ready["READY"] == "1"
        assert ready["STATUS"] == "2 processes running"
        # READY came after both were up for min_uptime: their running lines are already out.
        procrun.wait_for_line(r"process.running .*process=web.1")
        procrun.wait_for_line(r"process.running .*process=peek.1")
        assert {"WATCHDOG": "1"} in before_ready, "pings from the start, every 200 ms"
        assert receive_until(sock, "WATCHDOG")[-1] == {"WATCHDOG": "1"}
        procrun.signal(signal.SIGTERM)
        stopping = receive_until(sock, "STOPPING")[-1]
        assert stopping == {"STOPPING": "1", "STATUS": "stopping"}
        assert procrun.wait() == 0
    peek = procrun.wait_for_line(r"peek.1 +\| notify=")
    assert "notify=[] watchdog=[]" in peek.string, "addressed to procrun, not to its children"

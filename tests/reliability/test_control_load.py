"""The control socket of a real `procrun start` under load and abuse: many clients at once,
garbage, huge and silent requests. Every client gets an answer and the supervisor keeps serving
(issue 6; test_control.py covers the protocol against a fake target)."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fakecontrol import short_temp_dir
from tests.harness import DEADLINE_SECONDS, Procrun, child

RECORDER = Path(__file__).parent.parent / "children" / "recorder.py"
MEGABYTE = 1024 * 1024
SERVER_REQUEST_TIMEOUT = 5.0  # controlserver.REQUEST_TIMEOUT_SECONDS


class Supervisor:
    def __init__(self, procrun: Procrun, socket: Path, directory: Path, pids: dict[str, int]):
        self.procrun = procrun
        self.socket = socket
        self.directory = directory
        self.pids = pids

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "procrun", *args],
            cwd=self.directory,
            env={**os.environ, "PROCRUN_SOCKET": str(self.socket), "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def connect(self) -> socket.socket:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(DEADLINE_SECONDS)  # a hang guard
        client.connect(str(self.socket))
        return client

    def exchange(self, data: bytes) -> list[dict[str, Any]]:
        """Send raw bytes (as much as the server takes) and read every reply line until hang-up."""
        with self.connect() as client:
            # The server may refuse before reading it all; its reply is still there.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                client.sendall(data)
            return [json.loads(line) for line in read_until_hangup(client)]

    def still_serving(self) -> None:
        """A status answer that shows every process still running under the same pid."""
        answer = self.exchange(b'{"verb": "status"}\n')
        assert len(answer) == 1, answer
        assert answer[0]["ok"] is True, answer
        pids = {row["name"]: row["pid"] for row in answer[0]["result"]["processes"]}
        states = {row["state"] for row in answer[0]["result"]["processes"]}
        assert (pids, states) == (self.pids, {"RUNNING"})


def read_until_hangup(client: socket.socket) -> list[bytes]:
    data = b""
    try:
        while chunk := client.recv(65536):
            data += chunk
    except ConnectionResetError:  # after the reply, when the server left our request unread
        pass
    return data.splitlines()


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    with short_temp_dir() as directory:
        path = directory / "control.sock"
        procfile = f"web: {child(RECORDER)}\nworker: {child(RECORDER, '--pool', '1')}\n"
        toml = '[defaults]\nmin_uptime = "100ms"\n'
        env = {"PROCRUN_SOCKET": str(path)}
        with Procrun(tmp_path, procfile, env=env, toml=toml) as procrun:
            pids = {}
            for _ in range(2):
                running = procrun.wait_for_line(r"process.running .*pid=(\d+) process=(\S+)")
                pids[running.group(2)] = int(running.group(1))
            yield Supervisor(procrun, path, tmp_path, pids)
            procrun.signal(signal.SIGTERM)
            assert procrun.wait() == 0
            procrun.rest()
        transcript = procrun.transcript()
    assert "control.failed" not in transcript, transcript
    assert "Traceback" not in transcript + procrun.stderr


def test_many_concurrent_clients_all_get_valid_answers(supervisor: Supervisor) -> None:
    """50 `procrun status` processes and 200 raw clients at once."""
    raw_requests = [
        b'{"verb": "info"}\n',
        b'{"verb": "status"}\n',
        b'{"verb": "status", "names": ["worker.1"]}\n',
        b'{"verb": "logs", "lines": 5}\n',
    ]
    with ThreadPoolExecutor(max_workers=64) as pool:
        statuses = [pool.submit(supervisor.cli, "status") for _ in range(50)]
        raws = [pool.submit(supervisor.exchange, raw_requests[n % 4]) for n in range(200)]
        status_results = [future.result() for future in statuses]
        raw_results = [future.result() for future in raws]
    for result in status_results:
        assert result.returncode == 0, result.stdout + result.stderr
        rows = [line.split()[:2] for line in result.stdout.splitlines()[2:]]
        assert rows == [["web.1", "RUNNING"], ["worker.1", "RUNNING"]], result.stdout
    for n, answer in enumerate(raw_results):
        assert len(answer) == 1, answer
        assert answer[0]["ok"] is True, answer
        result = answer[0]["result"]
        match n % 4:
            case 0:
                assert result["pid"] == supervisor.procrun.proc.pid
            case 1:
                assert len(result["processes"]) == 2
            case 2:
                assert [row["name"] for row in result["processes"]] == ["worker.1"]
            case 3:
                assert isinstance(result["lines"], list)
    supervisor.still_serving()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not valid JSON", id="http"),
        pytest.param(b"\xff\xfe\x00\x01garbage\n", "not UTF-8", id="binary"),
        pytest.param(b'{"verb": "__import__", "names": ["os"]}\n', "unknown verb", id="verb"),
        pytest.param(
            b'{"verb": "signal", "names": ["web"], "signal": "NOPE"}\n',
            "unknown signal 'NOPE'",
            id="signal",
        ),
        pytest.param(b"[" * 100_000 + b"\n", "longer than", id="nested"),
        pytest.param(b"a" * MEGABYTE + b"\n", "longer than", id="1MB-line"),
        pytest.param(b"a" * MEGABYTE, "longer than", id="1MB-no-newline"),
        pytest.param(
            b'{"verb": "status", "names": ["' + b"w" * MEGABYTE + b'"]}\n',
            "longer than",
            id="1MB-json",
        ),
    ],
)
def test_garbage_and_huge_requests_get_an_error_and_the_supervisor_keeps_serving(
    supervisor: Supervisor, data: bytes, error: str
) -> None:
    answer = supervisor.exchange(data)
    assert len(answer) == 1, answer
    assert answer[0]["ok"] is False
    assert error in answer[0]["error"]
    supervisor.still_serving()
    supervisor.procrun.wait_for_line(r"control\.(rejected|request) ")  # seen, answered, logged
    assert " got " not in supervisor.procrun.transcript(), "no request reached a process"


def test_abusive_clients_at_once_do_not_hold_up_the_others(supervisor: Supervisor) -> None:
    """100 silent connections and 20 clients pushing 1 MB each, while `procrun status` runs: it is
    answered before the silent ones are dropped, and they are dropped with an error reply."""
    silent = [supervisor.connect() for _ in range(100)]
    try:
        pushers = [
            threading.Thread(target=supervisor.exchange, args=(b"x" * MEGABYTE,)) for _ in range(20)
        ]
        for pusher in pushers:
            pusher.start()
        status = supervisor.cli("status")
        assert status.returncode == 0, status.stdout + status.stderr
        for pusher in pushers:
            pusher.join(DEADLINE_SECONDS)
            assert not pusher.is_alive()
        for connection in silent:
            connection.setblocking(False)
            with pytest.raises(BlockingIOError):  # no reply yet: status did not wait for them
                connection.recv(1)
            connection.settimeout(SERVER_REQUEST_TIMEOUT + DEADLINE_SECONDS)
        for connection in silent:
            (reply,) = [json.loads(line) for line in read_until_hangup(connection)]
            assert reply == {
                "ok": False,
                "error": f"no complete request line within {SERVER_REQUEST_TIMEOUT:g} s",
            }
    finally:
        for connection in silent:
            connection.close()
    supervisor.still_serving()

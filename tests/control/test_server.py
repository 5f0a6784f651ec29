"""The control socket: protocol round trips, refusals, robustness, socket file lifecycle, peers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from procrun import __version__
from procrun.control.client import (
    NoSupervisorError,
    call,
    call_stream,
    request,
    request_stream,
)
from procrun.control.protocol import MAX_REQUEST_BYTES, ControlError
from procrun.control.server import ControlServer
from procrun.errors import EXIT_NO_SUPERVISOR, ProcrunError
from tests.fakecontrol import (
    DEADLINE_SECONDS,
    FakeTarget,
    raw_exchange,
    read_until_hangup,
)


def error_of(lines: list[bytes]) -> str:
    """The error of a one-line error reply."""
    assert len(lines) == 1, lines
    reply = json.loads(lines[0])
    assert reply["ok"] is False, reply
    error = reply["error"]
    assert isinstance(error, str)
    return error


# --- round trips -------------------------------------------------------------------------------


async def test_info_names_the_server(server: ControlServer) -> None:
    assert await request(server.path, {"verb": "info"}) == {
        "pid": os.getpid(),
        "project_dir": "/srv/app",
        "version": __version__,
        "started_at": 1000.0,
        "socket": str(server.path),
    }


async def test_status_passes_names_and_returns_the_targets_answer(
    server: ControlServer, target: FakeTarget
) -> None:
    everything = await request(server.path, {"verb": "status"})
    assert [p["name"] for p in everything["processes"]] == ["web.1", "worker.1", "worker.2"]
    one = await request(server.path, {"verb": "status", "names": ["web.1"]})
    assert one == await FakeTarget().status(["web.1"])
    assert [p["name"] for p in one["processes"]] == ["web.1"]
    assert target.calls == [("status", []), ("status", ["web.1"])]


@pytest.mark.parametrize("verb", ["start", "stop", "restart"])
async def test_start_stop_restart_act_on_the_named_processes(
    server: ControlServer, target: FakeTarget, verb: str
) -> None:
    result = await request(server.path, {"verb": verb, "names": ["worker"]})
    expected: dict[str, object] = {"processes": ["worker"], "project_dir": "/srv/app"}
    if verb == "start":
        expected["already_running"] = []
    assert result == expected
    assert target.calls == [(verb, ["worker"])]


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("TERM", signal.SIGTERM),
        ("sighup", signal.SIGHUP),
        ("15", signal.SIGTERM),
        (10, signal.SIGUSR1),
    ],
)
async def test_signal_accepts_the_usual_spellings(
    server: ControlServer, target: FakeTarget, spelling: str | int, expected: signal.Signals
) -> None:
    request_body = {"verb": "signal", "names": ["web.1"], "signal": spelling, "group": True}
    result = await request(server.path, request_body)
    assert result == {"signal": expected.name, "results": ["web.1: delivered"]}
    assert target.calls == [("signal", (["web.1"], expected, True))]


async def test_signal_goes_to_the_main_pid_unless_group_is_asked(
    server: ControlServer, target: FakeTarget
) -> None:
    await request(server.path, {"verb": "signal", "names": ["web.1"], "signal": "USR2"})
    assert target.calls == [("signal", (["web.1"], signal.SIGUSR2, False))]


async def test_logs_returns_recent_lines(server: ControlServer, target: FakeTarget) -> None:
    result = await request(server.path, {"verb": "logs", "names": [], "lines": 1})
    assert result == {"lines": [{"process": "worker.1", "line": "old 2"}]}
    assert target.calls == [("recent_lines", ([], 1))]
    await request(server.path, {"verb": "logs"})
    assert target.calls[-1] == ("recent_lines", ([], 100)), "100 lines by default"


async def test_shutdown_is_requested_with_the_peer_pid(
    server: ControlServer, target: FakeTarget
) -> None:
    assert await request(server.path, {"verb": "shutdown"}) == {"shutting_down": True}
    assert target.shutdown_reasons == [f"requested on the control socket by pid {os.getpid()}"]


async def test_the_blocking_client_gets_the_same_answers(server: ControlServer) -> None:
    info = await asyncio.to_thread(call, server.path, {"verb": "info"}, 5.0)
    assert info["project_dir"] == "/srv/app"
    with pytest.raises(ControlError, match="unknown process 'nope'"):
        await asyncio.to_thread(call, server.path, {"verb": "stop", "names": ["nope"]}, 5.0)


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"verb": "reboot"},
            'unknown verb "reboot": valid verbs are info, status, start, stop, '
            "restart, signal, logs, shutdown, scale",
        ),
        ({"verb": "__class__"}, 'unknown verb "__class__"'),
        ({"verb": 7}, "unknown verb 7"),
        ({"names": ["web"]}, 'request has no "verb": valid verbs are info'),
        (
            {"verb": "status", "name": "web"},
            'unknown field "name" for status: valid fields are names',
        ),
        (
            {"verb": "info", "x": 1},
            'unknown field "x" for info: valid fields are none besides verb',
        ),
        ({"verb": "status", "names": "web"}, '"names" must be a list of process names'),
        ({"verb": "status", "names": [1]}, '"names" must be a list of process names'),
        ({"verb": "status", "names": ["../etc"]}, '"names" must be a list of process names'),
        ({"verb": "status", "names": ["a"] * 1001}, '"names" must be a list of process names'),
        ({"verb": "stop"}, 'stop needs at least one process name in "names"'),
        ({"verb": "restart", "names": []}, 'restart needs at least one process name in "names"'),
        ({"verb": "signal", "names": ["web"]}, 'signal needs a "signal" field'),
        ({"verb": "signal", "names": ["web"], "signal": "BOGUS"}, "unknown signal 'BOGUS'"),
        (
            {"verb": "signal", "names": ["web"], "signal": True},
            '"signal" must be a name or a number',
        ),
        (
            {"verb": "signal", "names": ["web"], "signal": "TERM", "group": 1},
            '"group" must be true or false',
        ),
        (
            {"verb": "logs", "lines": 10001},
            '"lines" must be a whole number from 0 to 10000, got 10001',
        ),
        ({"verb": "logs", "lines": -1}, '"lines" must be a whole number from 0 to 10000'),
        ({"verb": "logs", "lines": "5"}, '"lines" must be a whole number'),
        ({"verb": "logs", "lines": 1.5}, '"lines" must be a whole number'),
        ({"verb": "logs", "follow": "yes"}, '"follow" must be true or false'),
        ({"verb": "status", "names": ["nope"]}, "unknown process 'nope'"),  # from the target
    ],
)
async def test_bad_requests_get_an_error_reply_that_says_what_is_valid(
    server: ControlServer, target: FakeTarget, payload: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ControlError) as raised:
        await request(server.path, payload)
    assert expected in str(raised.value)
    assert all(call[0] == "status" for call in target.calls), "nothing acted on a bad request"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"hello there\n", "request is not valid JSON"),
        (b'{"verb": "status"\n', "request is not valid JSON"),
        (b"\xff\xfe\x00garbage\n", "request is not UTF-8 text"),
        (b"[1, 2, 3]\n", "request is not a JSON object"),
        (b'"status"\n', "request is not a JSON object"),
        (b"\n", "request is not valid JSON"),
        (b"[" * 60_000 + b"\n", "request is not valid JSON"),
        (b"1" * 5000 + b"\n", "request is not valid JSON"),  # past int's digit limit
        (b'{"verb": "info"}', "request line not terminated by a newline"),
    ],
)
async def test_garbage_gets_an_error_reply(
    server: ControlServer, data: bytes, expected: str
) -> None:
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    writer.write(data)
    writer.write_eof()  # so the unterminated line ends without waiting for the timeout
    lines = await read_until_hangup(reader)
    writer.close()
    await writer.wait_closed()
    assert expected in error_of(lines)


async def test_an_oversized_request_line_is_refused(server: ControlServer) -> None:
    with capture_logs() as logs:
        lines = await raw_exchange(
            server.path, b'{"verb": "status", "names": ["' + b"a" * MAX_REQUEST_BYTES + b'"]}\n'
        )
    assert error_of(lines) == f"request line longer than {MAX_REQUEST_BYTES} bytes"
    assert {"event": "control.rejected", "log_level": "warning"}.items() <= logs[0].items()


async def test_a_request_just_under_the_limit_is_served(server: ControlServer) -> None:
    head = b'{"verb": "status", "names": ["'
    padding = b"a" * (MAX_REQUEST_BYTES - len(head) - len(b'"]}') - 1)
    lines = await raw_exchange(server.path, head + padding + b'"]}\n')
    assert '"names" must be a list of process names' in error_of(lines), "read, not refused"


async def test_a_target_bug_is_an_internal_error_reply_and_is_logged(
    server: ControlServer,
) -> None:
    with (
        capture_logs() as logs,
        pytest.raises(ControlError, match="internal error: RuntimeError: the fake blew up"),
    ):
        await request(server.path, {"verb": "restart", "names": ["boom"]})
    failed = [entry for entry in logs if entry["event"] == "control.failed"]
    assert failed[0]["verb"] == "restart"
    assert failed[0]["log_level"] == "error"
    assert await request(server.path, {"verb": "info"}), "the server is still serving"


async def test_requests_are_logged_at_debug_with_verb_and_peer_pid(server: ControlServer) -> None:
    """Debug only: what a request does is logged by what it does (signal.sent, ...)."""
    with capture_logs() as logs:
        await request(server.path, {"verb": "restart", "names": ["web"]})
        await request(server.path, {"verb": "status"})
    assert logs == [
        {
            "event": "control.request",
            "verb": "restart",
            "peer_pid": os.getpid(),
            "log_level": "debug",
        },
        {
            "event": "control.request",
            "verb": "status",
            "peer_pid": os.getpid(),
            "log_level": "debug",
        },
    ]


# --- robustness --------------------------------------------------------------------------------


async def test_a_silent_client_is_dropped_after_the_timeout_while_others_are_served(
    sock_dir: Path, target: FakeTarget
) -> None:
    loop = asyncio.get_running_loop()
    async with ControlServer(
        sock_dir / "p.sock", target, project_dir=sock_dir, request_timeout=0.5
    ) as server:
        connected = loop.time()
        silent_reader, silent_writer = await asyncio.open_unix_connection(str(server.path))
        half_reader, half_writer = await asyncio.open_unix_connection(str(server.path))
        half_writer.write(b'{"verb": "sta')
        await half_writer.drain()

        answers = await asyncio.gather(*(request(server.path, {"verb": "info"}) for _ in range(20)))
        served = loop.time()
        silent_lines = await read_until_hangup(silent_reader)
        dropped = loop.time()
        half_lines = await read_until_hangup(half_reader)
        for writer in (silent_writer, half_writer):
            writer.close()
            await writer.wait_closed()
    assert len(answers) == 20
    assert served < connected + 0.5 <= dropped, "others were served while the silent one waited"
    assert error_of(silent_lines) == "no complete request line within 0.5 s"
    assert error_of(half_lines) == "no complete request line within 0.5 s"


async def test_many_concurrent_clients_are_all_answered(server: ControlServer) -> None:
    payloads = [{"verb": "status", "names": [f"worker.{1 + i % 2}"]} for i in range(300)]
    answers = await asyncio.gather(*(request(server.path, payload) for payload in payloads))
    assert [a["processes"][0]["name"] for a in answers] == [p["names"][0] for p in payloads]


async def test_a_long_stop_does_not_hold_up_other_clients(
    server: ControlServer, target: FakeTarget
) -> None:
    stopping = asyncio.create_task(request(server.path, {"verb": "stop", "names": ["slow"]}))
    async with asyncio.timeout(DEADLINE_SECONDS):
        await target.slow_started.wait()
    assert (await request(server.path, {"verb": "status"}))["processes"]
    assert not stopping.done()
    target.release.set()
    assert await stopping == {"processes": ["slow"], "project_dir": "/srv/app"}


async def test_closing_the_server_answers_a_waiting_client(
    sock_dir: Path, target: FakeTarget
) -> None:
    """A request still being carried out when procrun stops gets a reply saying so, and the
    server ends its task without a traceback (asyncio reports a cancelled connection task)."""
    server = ControlServer(sock_dir / "p.sock", target, project_dir=sock_dir)
    await server.start()
    stopping = asyncio.create_task(request(server.path, {"verb": "stop", "names": ["slow"]}))
    async with asyncio.timeout(DEADLINE_SECONDS):
        await target.slow_started.wait()
    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
    await server.close()
    with pytest.raises(ControlError, match="procrun is shutting down"):
        await stopping
    assert not server.path.exists()
    await asyncio.sleep(0)  # the stream's done-callback runs on the next pass of the loop
    assert errors == []


# --- logs follow -------------------------------------------------------------------------------


async def test_logs_follow_streams_backlog_then_new_lines_until_the_client_leaves(
    server: ControlServer, target: FakeTarget
) -> None:
    stream = request_stream(server.path, {"verb": "logs", "lines": 2, "follow": True})
    async with asyncio.timeout(DEADLINE_SECONDS):
        assert await anext(stream) == {"process": "web.1", "line": "old 1"}
        assert await anext(stream) == {"process": "worker.1", "line": "old 2"}
        target.publish("worker.2", "new \udcff bytes")
        assert await anext(stream) == {"process": "worker.2", "line": "new \udcff bytes"}
        await stream.aclose()  # the client goes away ...
        await target.follower_closed.wait()  # ... and the server closes the target's iterator
    assert target.followers == []


async def test_logs_follow_ends_when_the_supervisor_stops(
    server: ControlServer, target: FakeTarget
) -> None:
    stream = request_stream(server.path, {"verb": "logs", "lines": 0, "follow": True})
    async with asyncio.timeout(DEADLINE_SECONDS):
        first = asyncio.ensure_future(anext(stream))
        await target.subscribed.wait()
        target.publish("web.1", "last words")
        assert await first == {"process": "web.1", "line": "last words"}
        target.end_streams()
        assert [item async for item in stream] == []


async def test_logs_follow_of_an_unknown_process_is_an_error_before_streaming(
    server: ControlServer,
) -> None:
    stream = request_stream(server.path, {"verb": "logs", "names": ["nope"], "follow": True})
    with pytest.raises(ControlError, match="unknown process 'nope'"):
        await anext(stream)


async def test_the_blocking_client_follows_logs(server: ControlServer, target: FakeTarget) -> None:
    def read_two() -> list[dict[str, Any]]:
        lines = call_stream(server.path, {"verb": "logs", "lines": 1, "follow": True}, 5.0)
        items = [next(lines)]
        target_loop.call_soon_threadsafe(target.publish, "web.1", "fresh")
        items.append(next(lines))
        lines.close()
        return items

    target_loop = asyncio.get_running_loop()
    assert await asyncio.to_thread(read_two) == [
        {"process": "worker.1", "line": "old 2"},
        {"process": "web.1", "line": "fresh"},
    ]
    async with asyncio.timeout(DEADLINE_SECONDS):
        await target.follower_closed.wait()


# --- the socket file ---------------------------------------------------------------------------


async def test_the_socket_is_mode_0600_and_removed_on_close(
    sock_dir: Path, target: FakeTarget
) -> None:
    path = sock_dir / "p.sock"
    async with ControlServer(path, target, project_dir=sock_dir):
        info = os.lstat(path)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o600
    assert not path.exists()


async def test_a_stale_socket_is_replaced(sock_dir: Path, target: FakeTarget) -> None:
    path = sock_dir / "p.sock"
    with socket.socket(socket.AF_UNIX) as crashed:  # bound, never listening, never unlinked
        crashed.bind(str(path))
    with pytest.raises(NoSupervisorError, match="stale socket"):
        await request(path, {"verb": "info"})
    async with ControlServer(path, target, project_dir=sock_dir):
        assert (await request(path, {"verb": "info"}))["pid"] == os.getpid()


async def test_a_live_socket_is_refused_with_its_pid(
    server: ControlServer, target: FakeTarget
) -> None:
    second = ControlServer(server.path, target, project_dir=Path("/srv/app"))
    with pytest.raises(ProcrunError) as raised:
        await second.start()
    assert str(raised.value) == (
        f"another procrun is already running for this project (pid {os.getpid()}, socket "
        f"{server.path}); stop it with 'procrun shutdown' or set PROCRUN_SOCKET"
    )
    assert (await request(server.path, {"verb": "info"}))["pid"] == os.getpid(), "untouched"


async def test_a_file_that_is_not_a_socket_is_never_deleted(
    sock_dir: Path, target: FakeTarget
) -> None:
    path = sock_dir / "p.sock"
    path.write_text("precious")
    with pytest.raises(
        ProcrunError, match="exists and is not a socket; procrun will not delete it"
    ):
        await ControlServer(path, target, project_dir=sock_dir).start()
    assert path.read_text() == "precious"


async def test_close_leaves_a_socket_that_replaced_ours(sock_dir: Path, target: FakeTarget) -> None:
    path = sock_dir / "p.sock"
    server = ControlServer(path, target, project_dir=sock_dir)
    await server.start()
    path.unlink()
    with socket.socket(socket.AF_UNIX) as newcomer:
        newcomer.bind(str(path))
        await server.close()
        assert stat.S_ISSOCK(os.lstat(path).st_mode), "not ours: left alone"


async def test_no_supervisor_means_exit_code_4(sock_dir: Path) -> None:
    with pytest.raises(NoSupervisorError, match=f"{sock_dir}/none.sock does not exist") as raised:
        await asyncio.to_thread(call, sock_dir / "none.sock", {"verb": "info"})
    assert raised.value.exit_code == EXIT_NO_SUPERVISOR == 4


# --- peers -------------------------------------------------------------------------------------

NOBODY = 65534
# /usr/bin/python3: the test's own interpreter may live where nobody cannot enter.
PEER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PEER_SCRIPT = textwrap.dedent(
    """
    import socket, sys
    client = socket.socket(socket.AF_UNIX)
    client.connect(sys.argv[1])
    data = b""
    try:  # the server may refuse and hang up before it reads the request
        client.sendall(b'{"verb": "shutdown"}\\n')
    except BrokenPipeError:
        pass
    try:
        while chunk := client.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    sys.stdout.write(data.decode())
    """
)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another uid")
async def test_a_peer_of_another_uid_is_refused_by_its_credentials(
    sock_dir: Path, target: FakeTarget
) -> None:
    # Make the socket reachable by nobody, so that only the SO_PEERCRED check can refuse it.
    os.chmod(sock_dir, 0o711)
    async with ControlServer(sock_dir / "p.sock", target, project_dir=sock_dir) as server:
        os.chmod(server.path, 0o666)
        with capture_logs() as logs:
            peer = await asyncio.create_subprocess_exec(
                "setpriv",
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                PEER_PYTHON,
                "-c",
                PEER_SCRIPT,
                str(server.path),
                stdout=subprocess.PIPE,
            )
            async with asyncio.timeout(DEADLINE_SECONDS):
                out, _ = await peer.communicate()
        reply = json.loads(out)
    assert reply == {
        "ok": False,
        "error": f"permission denied: uid {NOBODY} may not control this supervisor "
        "(it runs as uid 0)",
    }
    assert target.shutdown_reasons == [], "the request was never acted on"
    assert logs == [
        {
            "event": "control.refused",
            "peer_pid": peer.pid,
            "peer_uid": NOBODY,
            "log_level": "warning",
        }
    ]


def test_the_client_module_stays_light() -> None:
    """`procrun status` must answer in milliseconds: no asyncio or structlog on its import path."""
    code = (
        "import sys, procrun.control.client; "
        "print(sorted({'asyncio', 'structlog'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

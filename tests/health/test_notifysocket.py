"""A process's private sd_notify socket, with real senders: children that lead their own session
as procrun's do, a grandchild in such a session, and foreign processes that must be ignored.

Every wait is on a future that on_message sets, under a deadline that only guards against a hang.
A rejection is proven by order: the foreign datagram is sent first, then one from the process's
own session; when that one arrives the first was read already, and nothing else arrived.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from procrun.health.notifysocket import MAX_DATAGRAM_BYTES, NotifySocket, parse_message

DEADLINE_SECONDS = 10.0

# Sends its datagram once per line on stdin and says "sent"; stays alive until stdin closes, so
# its session can still be checked when the datagram is read.
SENDER = """
import socket, sys
path, message = sys.argv[1], sys.argv[2]
for _ in sys.stdin:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), path)
    print("sent", flush=True)
"""


class Sender:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pid = process.pid

    async def send(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b"send\n")
        line = await asyncio.wait_for(self.process.stdout.readline(), DEADLINE_SECONDS)
        assert line == b"sent\n"


@asynccontextmanager
async def sender(
    path: Path, message: str, *, new_session: bool, through_shell: bool = False
) -> AsyncIterator[Sender]:
    """A child that sends `message` to `path`: leading its own session as procrun's children
    do, or not; through a shell, the shell leads and the sender is its child."""
    argv = [sys.executable, "-c", SENDER, str(path), message]
    if through_shell:  # `; :` keeps sh from exec-ing python as its last command
        argv = ["/bin/sh", "-c", '"$@"; :', "sh", *argv]
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=new_session,
    )
    try:
        yield Sender(process)
    finally:
        await asyncio.wait_for(process.communicate(b""), DEADLINE_SECONDS)  # closes stdin


class Inbox:
    """on_message: every message kept, and a future for the first one."""

    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self.first: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    def __call__(self, message: Mapping[str, str]) -> None:
        self.messages.append(dict(message))
        if not self.first.done():
            self.first.set_result(dict(message))

    async def wait(self) -> dict[str, str]:
        return await asyncio.wait_for(self.first, DEADLINE_SECONDS)


@pytest.fixture
def directory() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pn", dir="/tmp"))  # AF_UNIX paths stay under ~108 bytes
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Leader:
    """What the supervisor knows: the process's pid, None while none runs. `asked` is set once
    the socket has asked, which it does only for a datagram it is checking."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid
        self.asked = asyncio.Event()

    def __call__(self) -> int | None:
        self.asked.set()
        return self.pid


@asynccontextmanager
async def notify_socket(path: Path, leader: Leader, inbox: Inbox) -> AsyncIterator[NotifySocket]:
    notify = NotifySocket(path, leader, inbox)
    notify.start(asyncio.get_running_loop())
    try:
        yield notify
    finally:
        notify.close()


def send_from_here(path: Path, data: bytes) -> None:
    """A datagram from the test process itself: in the test's session."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, str(path))


def rejections(logs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "notify.rejected"]


# --- the process's own tree --------------------------------------------------------------------


async def test_a_child_leading_its_session_is_heard(directory: Path) -> None:
    path, inbox, leader = directory / "notify", Inbox(), Leader()
    async with notify_socket(path, leader, inbox) as notify:
        assert notify.path == path
        async with sender(path, "READY=1\nSTATUS=booted", new_session=True) as child:
            leader.pid = child.pid
            await child.send()
            assert await inbox.wait() == {"READY": "1", "STATUS": "booted"}


async def test_a_grandchild_in_the_process_session_is_heard(directory: Path) -> None:
    path, inbox, leader = directory / "notify", Inbox(), Leader()
    async with (
        notify_socket(path, leader, inbox),
        sender(path, "READY=1", new_session=True, through_shell=True) as child,
    ):
        leader.pid = child.pid  # the shell leads; python, its child, sends
        await child.send()
        assert await inbox.wait() == {"READY": "1"}


async def test_gunicorn_style_datagram(directory: Path) -> None:
    path, inbox, leader = directory / "notify", Inbox(), Leader()
    message = "READY=1\nSTATUS=Gunicorn arbiter booted"
    async with (
        notify_socket(path, leader, inbox),
        sender(path, message, new_session=True) as arbiter,
    ):
        leader.pid = arbiter.pid
        await arbiter.send()
        assert await inbox.wait() == {"READY": "1", "STATUS": "Gunicorn arbiter booted"}


# --- everyone else -----------------------------------------------------------------------------


@pytest.mark.parametrize("own_session", [False, True], ids=["test-session", "own-session"])
async def test_a_process_outside_the_session_is_ignored(directory: Path, own_session: bool) -> None:
    path, inbox, leader = directory / "notify", Inbox(), Leader()
    with capture_logs() as logs:
        async with (
            notify_socket(path, leader, inbox),
            sender(path, "READY=1\nSTATUS=impostor", new_session=own_session) as foreign,
            sender(path, "READY=1\nSTATUS=genuine", new_session=True) as child,
        ):
            leader.pid = child.pid
            session = os.getsid(foreign.pid)
            await foreign.send()
            await foreign.send()  # rejected again, but said once
            await child.send()
            assert await inbox.wait() == {"READY": "1", "STATUS": "genuine"}
            assert inbox.messages == [{"READY": "1", "STATUS": "genuine"}]
    [rejected] = rejections(logs)
    assert rejected["pid"] == foreign.pid
    assert rejected["socket"] == str(path)
    assert rejected["reason"] == (
        f"sender is in session {session}, not the process's ({child.pid})"
    )
    assert rejected["log_level"] == "warning"


async def test_nothing_is_heard_while_no_process_runs(directory: Path) -> None:
    path, inbox, leader = directory / "notify", Inbox(), Leader(None)
    with capture_logs() as logs:
        async with (
            notify_socket(path, leader, inbox),
            sender(path, "READY=1", new_session=True) as child,
        ):
            await child.send()  # before the supervisor knows its pid: dropped
            await asyncio.wait_for(leader.asked.wait(), DEADLINE_SECONDS)
            leader.pid = child.pid
            await child.send()
            assert await inbox.wait() == {"READY": "1"}
    assert inbox.messages == [{"READY": "1"}]
    assert [(r["pid"], r["reason"]) for r in rejections(logs)] == [
        (child.pid, "the process is not running")
    ]


async def test_a_datagram_over_the_limit_is_dropped_whole(directory: Path) -> None:
    path, inbox = directory / "notify", Inbox()
    with capture_logs() as logs:
        async with notify_socket(path, Leader(os.getsid(0)), inbox):
            send_from_here(path, b"STATUS=" + b"x" * MAX_DATAGRAM_BYTES)
            send_from_here(path, b"STATUS=short")
            assert await inbox.wait() == {"STATUS": "short"}
    assert inbox.messages == [{"STATUS": "short"}]
    [rejected] = rejections(logs)
    assert rejected["pid"] == os.getpid()
    assert rejected["reason"] == f"datagram longer than {MAX_DATAGRAM_BYTES} bytes"


async def test_an_on_message_error_is_logged_and_the_next_still_arrives(directory: Path) -> None:
    path, inbox = directory / "notify", Inbox()
    calls: list[Mapping[str, str]] = []

    def on_message(message: Mapping[str, str]) -> None:
        calls.append(message)
        if len(calls) == 1:
            raise RuntimeError("the supervisor broke")
        inbox(message)

    with capture_logs() as logs:
        notify = NotifySocket(path, Leader(os.getsid(0)), on_message)
        notify.start(asyncio.get_running_loop())
        try:
            send_from_here(path, b"READY=1")
            send_from_here(path, b"STATUS=still here")
            assert await inbox.wait() == {"STATUS": "still here"}
        finally:
            notify.close()
    assert [entry["event"] for entry in logs] == ["notify.delivery_failed"]


# --- the socket file ---------------------------------------------------------------------------


async def test_the_socket_is_owner_only_replaces_a_stale_file_and_close_unlinks(
    directory: Path,
) -> None:
    path = directory / "notify"
    path.write_text("left by an earlier run")
    notify = NotifySocket(path, Leader(), Inbox())
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    notify.start(asyncio.get_running_loop())
    notify.close()
    assert not path.exists()
    notify.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        notify.start(asyncio.get_running_loop())


# --- parsing: pure -----------------------------------------------------------------------------


def test_parse_message_takes_key_value_lines() -> None:
    data = b"READY=1\n\nSTATUS=a=b\nno equals sign\n=nokey\nSTATUS=last wins\nMAINPID=42\n"
    assert parse_message(data) == {"READY": "1", "STATUS": "last wins", "MAINPID": "42"}


def test_parse_message_of_nothing_is_empty() -> None:
    assert parse_message(b"") == {}
    assert parse_message(b"\n\n") == {}

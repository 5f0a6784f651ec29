"""A private sd_notify socket for one managed process: what it says (READY=1, STATUS=...,
STOPPING=1, WATCHDOG=1), and only what its own process tree says.

The protocol (sd_notify(3)): one datagram of newline-separated KEY=VALUE lines, sent to the
AF_UNIX SOCK_DGRAM socket named by NOTIFY_SOCKET. Each process gets its own socket, so a message
needs no name to say whose it is; but anything that can reach the path could send one, so each
datagram's sender is checked from the credentials the kernel attaches (SO_PASSCRED), never from
its content. Every child procrun spawns leads its own session, and session ids are inherited and
kept across fork and exec (only setsid leaves one), so the process's tree is exactly the senders
whose session id is the leader's pid. The sender's uid must be ours or root's, as systemd asks.

A sender that exits before its datagram is read cannot be checked any more, and is rejected:
sd_notify(3) has the same race under systemd, and long-lived senders (gunicorn's arbiter, a
worker's main process) do not meet it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

log = structlog.get_logger()

MAX_DATAGRAM_BYTES = 4096
"""As systemd's limit for one notification; a longer datagram is dropped, not cut."""
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
# Room for one ucred and nothing else: no file descriptor can be passed into procrun.
_ANCILLARY_BYTES = socket.CMSG_SPACE(_UCRED.size)

MessageCallback = Callable[[Mapping[str, str]], None]


class NotifySocket:
    """Receives one process's notifications; `leader()` is its pid, None while none runs."""

    def __init__(
        self, path: Path, leader: Callable[[], int | None], on_message: MessageCallback
    ) -> None:
        self._path = path
        self._leader = leader
        self._on_message = on_message
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rejected: set[int | None] = set()  # senders already logged, each once
        self._socket: socket.socket | None = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        try:
            # Before bind, so no datagram can arrive without its sender's credentials.
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a socket file left by an earlier run
            self._socket.bind(str(path))
            # The child runs as our uid, so owner-only lets it in and keeps other users out.
            os.chmod(path, 0o600)
        except BaseException:
            self._socket.close()
            raise

    @property
    def path(self) -> Path:
        return self._path

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver messages as they come, on `loop`."""
        if self._socket is None:
            raise RuntimeError(f"notify socket {self._path} is closed")
        self._loop = loop
        loop.add_reader(self._socket.fileno(), self._on_readable)

    def close(self) -> None:
        """Stop receiving, and remove the socket file; a second call does nothing."""
        if self._socket is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._socket.fileno())
        self._socket.close()
        self._socket = None
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    def _on_readable(self) -> None:
        # Every pending datagram, since a burst wakes the reader once. Nothing may escape:
        # an exception here would only reach the loop's handler, and the process would be
        # left without its notifications.
        while self._socket is not None:
            try:
                data, ancillary, flags, _ = self._socket.recvmsg(
                    MAX_DATAGRAM_BYTES, _ANCILLARY_BYTES
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                log.warning("notify.receive_failed", socket=str(self._path), error=str(error))
                return
            try:
                self._receive(data, ancillary, flags)
            except Exception:
                log.exception("notify.delivery_failed", socket=str(self._path))

    def _receive(self, data: bytes, ancillary: list[tuple[int, int, bytes]], flags: int) -> None:
        pid, uid = _sender(ancillary)
        reason = self._rejection(pid, uid)
        if reason is None and flags & socket.MSG_TRUNC:
            reason = f"datagram longer than {MAX_DATAGRAM_BYTES} bytes"
        if reason is not None:
            if pid not in self._rejected:
                self._rejected.add(pid)
                log.warning("notify.rejected", socket=str(self._path), pid=pid, reason=reason)
            return
        message = parse_message(data)
        if message:
            self._on_message(message)

    def _rejection(self, pid: int | None, uid: int | None) -> str | None:
        """Why a datagram from `pid` is not the process's to send; None when it is."""
        if pid is None or uid is None:
            return "no sender credentials"
        if pid <= 0:
            return "sender outside procrun's pid namespace"  # and getsid(0) would be ours
        if uid not in (os.getuid(), 0):
            return f"sender uid {uid} is neither procrun's nor root's"
        leader = self._leader()
        if leader is None:
            return "the process is not running"
        try:
            session = os.getsid(pid)
        except OSError:  # ProcessLookupError: gone before it could be checked
            return "sender exited before it could be checked"
        if session != leader:
            return f"sender is in session {session}, not the process's ({leader})"
        return None


def _sender(ancillary: list[tuple[int, int, bytes]]) -> tuple[int | None, int | None]:
    """The sender's pid and uid from SCM_CREDENTIALS; (None, None) when there are none."""
    for level, kind, payload in ancillary:
        credentials = level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
        if credentials and len(payload) >= _UCRED.size:
            pid, uid, _ = _UCRED.unpack_from(payload)
            return pid, uid
    return None, None


def parse_message(data: bytes) -> dict[str, str]:
    """`READY=1\\nSTATUS=booted` -> {"READY": "1", "STATUS": "booted"}; empty lines and lines
    without `=` are skipped, and of a key given twice the last counts."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, equals, value = line.partition("=")
        if key and equals:
            fields[key] = value
    return fields

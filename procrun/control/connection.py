"""One control connection's input and output: who the peer is, replies, streamed lines, and
hanging up, each bounded in time so a client that stops reading never holds the server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from procrun.control.protocol import encode

WRITE_TIMEOUT_SECONDS = 30.0  # a reader this far behind (a stalled `logs -f`) is dropped
_UCRED = struct.Struct("3i")  # Linux struct ucred: pid, uid, gid


class ClientGone(Exception):
    """The client hung up, or stopped reading for WRITE_TIMEOUT_SECONDS: nobody to answer."""


@dataclass(frozen=True)
class Peer:
    """Who is on the other end; None where the platform does not tell (see the module doc)."""

    pid: int | None
    uid: int | None


def peer_of(writer: asyncio.StreamWriter) -> Peer:
    sock = writer.get_extra_info("socket")
    if sys.platform != "linux" or sock is None:
        return Peer(pid=None, uid=None)
    pid, uid, _gid = _UCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    )
    return Peer(pid=pid, uid=uid)


async def pump_lines(lines: AsyncIterator[tuple[str, str]], writer: asyncio.StreamWriter) -> None:
    async for name, line in lines:
        writer.write(encode({"process": name, "line": line}))
        await drain(writer)


async def until_eof(reader: asyncio.StreamReader) -> None:
    """Return when the client hangs up; whatever it sends meanwhile is discarded."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass


async def drain(writer: asyncio.StreamWriter) -> None:
    try:
        async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
            await writer.drain()
    except (ConnectionError, TimeoutError):
        raise ClientGone from None


async def send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await drain(writer)


async def reply_error(writer: asyncio.StreamWriter, message: str) -> None:
    await send(writer, encode({"ok": False, "error": message}))


async def hang_up(writer: asyncio.StreamWriter) -> None:
    """Close the connection; abort it if the client will not take the last bytes."""
    writer.close()
    try:
        async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()
    except asyncio.CancelledError:
        writer.transport.abort()
        raise

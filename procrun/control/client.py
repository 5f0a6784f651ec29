"""The control client: what `procrun status`, `stop`, `logs`... use to talk to `procrun start`:
find the socket, send one request (protocol.py), read the reply.

The server is server.py. This module is imported by every short-lived command, which must answer
in milliseconds: it uses blocking sockets and imports neither asyncio nor structlog at module
level (the async helpers import asyncio when called).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procrun.control.paths import (
    SOCKET_ENV,
    SOCKET_SUFFIX,
    check_socket_directory,
    explicit_socket,
    project_socket_path,
    socket_directory,
)
from procrun.control.protocol import checked_request, decode_reply, decode_stream_item
from procrun.errors import EXIT_NO_SUPERVISOR, ProcrunError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncGenerator

DEFAULT_TIMEOUT_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 1.0


class NoSupervisorError(ProcrunError):
    """Nothing listens where a supervisor should; the message names every socket tried."""

    exit_code = EXIT_NO_SUPERVISOR


def _connection_error(path: Path, error: OSError) -> ProcrunError:
    if error.errno == errno.ENOENT:
        return NoSupervisorError(f"no procrun supervisor is running: {path} does not exist")
    if error.errno == errno.ECONNREFUSED:
        return NoSupervisorError(
            f"no procrun supervisor is listening at {path} (a stale socket: the supervisor that "
            "made it has exited)"
        )
    if isinstance(error, TimeoutError):
        return ProcrunError(f"the supervisor at {path} did not answer in time")
    return ProcrunError(f"cannot talk to the supervisor at {path}: {error.strerror or error}")


def _connect(path: Path, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(os.fspath(path))
    except OSError as error:
        sock.close()
        raise _connection_error(path, error) from None
    return sock


def _send(sock: socket.socket, data: bytes) -> None:
    # A server that refuses may close before reading everything; its reply is still readable.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(data)


def call(
    path: Path, payload: Mapping[str, Any], timeout: float | None = DEFAULT_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Send one request and return the reply's result (blocking).

    `timeout` bounds connecting and each wait for data; None waits as long as it takes (`stop` of
    a Celery worker may take its whole grace). Raises NoSupervisorError when nothing listens at
    `path`, ControlError for an error reply, ProcrunError for anything else.
    """
    data = checked_request(payload)
    with _connect(path, timeout) as sock, sock.makefile("rb") as replies:
        _send(sock, data)
        try:
            line = replies.readline()
        except OSError as error:
            raise _connection_error(path, error) from None
    return decode_reply(line, path)


def call_stream(
    path: Path, payload: Mapping[str, Any], timeout: float | None = DEFAULT_TIMEOUT_SECONDS
) -> Generator[dict[str, Any], None, None]:
    """Send a streaming request (`logs` with `follow`) and yield each streamed object.

    The first reply is checked (and raises) before anything is yielded; `timeout` bounds only that
    first reply, then the stream waits as long as the supervisor runs. Closing the iterator
    closes the connection, which ends the stream on the server.
    """
    data = checked_request(payload)
    with _connect(path, timeout) as sock, sock.makefile("rb") as replies:
        _send(sock, data)
        try:
            decode_reply(replies.readline(), path)
        except OSError as error:
            raise _connection_error(path, error) from None
        sock.settimeout(None)
        for line in replies:
            yield decode_stream_item(line, path)


async def request(path: Path, payload: Mapping[str, Any]) -> dict[str, Any]:
    """`call` for code that runs in an event loop; bound it with `asyncio.timeout` if needed."""
    reader, writer = await _open_and_send(path, checked_request(payload))
    try:
        line = await reader.readline()
    except OSError as error:
        raise _connection_error(path, error) from None
    finally:
        writer.close()
        await writer.wait_closed()
    return decode_reply(line, path)


async def request_stream(
    path: Path, payload: Mapping[str, Any]
) -> AsyncGenerator[dict[str, Any], None]:
    """`call_stream` for code that runs in an event loop; closing it (aclose) disconnects."""
    reader, writer = await _open_and_send(path, checked_request(payload))
    try:
        try:
            decode_reply(await reader.readline(), path)
        except OSError as error:
            raise _connection_error(path, error) from None
        while line := await reader.readline():
            yield decode_stream_item(line, path)
    finally:
        writer.close()
        await writer.wait_closed()


async def _open_and_send(
    path: Path, data: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    import asyncio  # here, not at the top: the short-lived commands never need it

    try:
        reader, writer = await asyncio.open_unix_connection(os.fspath(path))
    except OSError as error:
        raise _connection_error(path, error) from None
    try:
        await _send_async(writer, data)
    except OSError as error:
        writer.close()
        await writer.wait_closed()
        raise _connection_error(path, error) from None
    return reader, writer


async def _send_async(writer: asyncio.StreamWriter, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # as in _send
        writer.write(data)
        await writer.drain()


# --- discovery ---------------------------------------------------------------------------------


def find_socket(
    explicit: str | os.PathLike[str] | None = None,
    *,
    project_dir: Path | None,
    environ: Mapping[str, str] | None = None,
    probe_timeout: float = PROBE_TIMEOUT_SECONDS,
) -> Path:
    """The socket a command should talk to: `explicit` (--socket), else PROCRUN_SOCKET, else
    the socket of `project_dir`, the project the command is for, and never another project's.

    Only without a project (`project_dir` None: no Procfile here, as with `docker exec
    <container> procrun status` from any directory) is it the only socket with a live server;
    several live servers are a ProcrunError listing their projects. NoSupervisorError names what
    was tried.
    """
    chosen = explicit_socket(explicit, environ)
    if chosen is not None:
        return chosen
    directory = socket_directory(environ)
    own = project_socket_path(directory, project_dir) if project_dir is not None else None
    try:
        check_socket_directory(directory)
    except FileNotFoundError:
        tried = f"tried {own} " if own is not None else ""
        raise NoSupervisorError(
            f"no procrun supervisor is running: {tried}({directory} does not exist)"
        ) from None
    if own is not None:
        if os.path.lexists(own):
            return own
        raise NoSupervisorError(
            f"no procrun supervisor is running for {project_dir}: tried {own}; start one there "
            f"with 'procrun start', or name another project with -d DIR or {SOCKET_ENV}"
        )
    live = {path: info for path in _sockets_in(directory) if (info := probe(path, probe_timeout))}
    if len(live) == 1:
        return next(iter(live))
    if not live:
        raise NoSupervisorError(
            f"no procrun supervisor is running: no socket in {directory} has a live supervisor; "
            f"start one with 'procrun start' or set {SOCKET_ENV}"
        )
    raise ProcrunError(
        "several procrun supervisors are running and none is for this directory; cd into one "
        f"of their project directories, or use -d DIR or --socket PATH (or {SOCKET_ENV}):",
        details=[f"{path}  {_describe(info)}" for path, info in sorted(live.items())],
    )


def _sockets_in(directory: Path) -> list[Path]:
    with os.scandir(directory) as entries:
        return sorted(
            Path(entry.path)
            for entry in entries
            if entry.name.endswith(SOCKET_SUFFIX) and _is_socket(entry.path)
        )


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:  # removed since the listing
        return False


def probe(path: Path, timeout: float = PROBE_TIMEOUT_SECONDS) -> dict[str, Any] | None:
    """The `info` of the server at `path`; None if nobody listens there; `{"problem": ...}` if it
    accepted the connection, then refused, hung or made no sense."""
    try:
        return call(path, {"verb": "info"}, timeout)
    except NoSupervisorError:
        return None
    except ProcrunError as error:  # alive (it accepted us) but refused, hung or confused
        return {"problem": str(error)}


def _describe(info: Mapping[str, Any]) -> str:
    if "problem" in info:
        return f"(no info: {info['problem']})"
    return f"project {info.get('project_dir', '?')} (pid {info.get('pid', '?')})"

"""The control server `procrun start` runs on its Unix socket (protocol and client: control.py).

Who gets an answer: the socket is mode 0600 in a 0700 directory (socketpath.py) and, on Linux,
every connection's peer credentials (SO_PEERCRED) are read and only our own uid and root are
served; anyone else gets an error reply and is hung up on. Other platforms (macOS and the BSDs
have LOCAL_PEERCRED / getpeereid, not implemented here) skip that check and rely on the file and
directory modes alone, so there an explicit PROCRUN_SOCKET must point into a private directory.
There is no TCP listener, ever.

Each connection is its own task, with a deadline for its request line: a silent or slow client
never holds up another, and a `stop` that waits out a 10-minute grace holds up only its own
client. Requests are validated in full before the supervisor is touched; what the supervisor
raises becomes an error reply and never takes the server down.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog

from procrun import __version__
from procrun.control.client import PROBE_TIMEOUT_SECONDS, request
from procrun.control.connection import (
    ClientGone,
    Peer,
    drain,
    hang_up,
    peer_of,
    pump_lines,
    reply_error,
    send,
    until_eof,
)
from procrun.control.listener import LISTEN_BACKLOG, BoundSocket, bind_socket
from procrun.control.paths import SOCKET_ENV
from procrun.control.protocol import MAX_REQUEST_BYTES, Info, ScaleResult, encode
from procrun.control.requests import (
    RequestError,
    counts_field,
    decode_request,
    flag_field,
    lines_field,
    names_field,
    signal_field,
    wait_field,
)
from procrun.control.target import ControlTarget
from procrun.errors import ProcrunError

log = structlog.get_logger()

REQUEST_TIMEOUT_SECONDS = 5.0
SHUTTING_DOWN = "procrun is shutting down: this request was not carried out to the end"


class ControlServer:
    """Serves `target` on the Unix socket at `path` between `start()` and `close()`."""

    def __init__(
        self,
        path: Path,
        target: ControlTarget,
        *,
        project_dir: Path,
        pid: int | None = None,
        version: str = __version__,
        started_at: float | None = None,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self._path = Path(path)
        self._target = target
        self._info: Info = {
            "pid": os.getpid() if pid is None else pid,
            "project_dir": os.fspath(project_dir),
            "version": version,
            "started_at": time.time() if started_at is None else started_at,
            "socket": os.fspath(self._path),
        }
        self._request_timeout = request_timeout
        self._server: asyncio.Server | None = None
        self._bound: BoundSocket | None = None
        self._closed = False
        self._connections: set[asyncio.Task[Any]] = set()
        # Connections whose request is being carried out and has no reply yet.
        self._awaiting: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    @property
    def path(self) -> Path:
        return self._path

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen on the socket, replacing a stale one; ProcrunError if another server is live."""
        bound = bind_socket(self._path)
        if bound is None:
            raise ProcrunError(
                f"another procrun is already running for this project "
                f"(pid {await self._other_pid()}, socket {self._path}); stop it with "
                f"'procrun shutdown' or set {SOCKET_ENV}"
            )
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, sock=bound.sock, limit=MAX_REQUEST_BYTES, backlog=LISTEN_BACKLOG
            )
        except BaseException:
            bound.sock.close()
            bound.remove()
            raise
        self._bound = bound

    async def close(self) -> None:
        """Stop listening, hang up on every client (ending `logs -f` streams), remove the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closed = True
        server.close()
        if self._bound is not None:
            self._bound.remove()
        for writer in self._awaiting.values():
            # Nobody will complete these: say so, rather than hang up without a word.
            if not writer.is_closing():
                writer.write(encode({"ok": False, "error": SHUTTING_DOWN}))
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _other_pid(self) -> str:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                info = await request(self._path, {"verb": "info"})
        except (ProcrunError, TimeoutError):
            return "unknown"
        return str(info.get("pid", "unknown"))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            if not self._closed:  # else accepted just before close(): hang up at once
                await self._converse(reader, writer)
        except (ClientGone, ConnectionError):
            pass
        except asyncio.CancelledError:
            # close() hung up on this client. The task ends normally: asyncio's stream callback
            # calls exception() on it, which would raise for a cancelled task and log a traceback.
            pass
        except Exception:
            log.error("control.failed", exc_info=True)  # a bug here must not stop the server
        finally:
            if task is not None:
                self._connections.discard(task)
                self._awaiting.pop(task, None)
            await hang_up(writer)

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_of(writer)
        if peer.uid is not None and peer.uid not in (0, os.geteuid()):
            log.warning("control.refused", peer_pid=peer.pid, peer_uid=peer.uid)
            await reply_error(
                writer,
                f"permission denied: uid {peer.uid} may not control this supervisor "
                f"(it runs as uid {os.geteuid()})",
            )
            return
        try:
            line = await self._read_line(reader)
            if line is None:
                return  # connected and left without a word, as a liveness check does
            message = decode_request(line)
        except RequestError as error:
            log.warning("control.rejected", peer_pid=peer.pid, error=str(error))
            await reply_error(writer, str(error))
            return
        verb = message["verb"]
        # Debug: a healthcheck's `procrun status` every few seconds must not fill the log, and
        # what a mutating request does is logged by what it does (signal.sent, process.stopped).
        log.debug("control.request", verb=verb, peer_pid=peer.pid)
        task = asyncio.current_task()
        if task is not None and not (verb == "logs" and message.get("follow") is True):
            self._awaiting[task] = writer
        try:
            result = await self._execute(verb, message, peer, reader, writer)
            reply = None if result is None else encode({"ok": True, "result": result})
        except ClientGone:
            raise
        except ProcrunError as error:
            if isinstance(error, RequestError):  # a field off the wire, as decode_request's
                log.warning("control.rejected", peer_pid=peer.pid, error=str(error))
            await reply_error(writer, str(error))
            return
        except Exception as error:
            log.error("control.failed", verb=verb, peer_pid=peer.pid, exc_info=True)
            await reply_error(writer, f"internal error: {type(error).__name__}: {error}")
            return
        finally:
            if task is not None:
                self._awaiting.pop(task, None)
        if reply is not None:
            await send(writer, reply)

    async def _read_line(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            async with asyncio.timeout(self._request_timeout):
                return await reader.readuntil(b"\n")
        except TimeoutError:
            raise RequestError(
                f"no complete request line within {self._request_timeout:g} s"
            ) from None
        except asyncio.LimitOverrunError:
            raise RequestError(f"request line longer than {MAX_REQUEST_BYTES} bytes") from None
        except asyncio.IncompleteReadError as error:
            if not error.partial:
                return None
            raise RequestError("request line not terminated by a newline") from None

    async def _execute(
        self,
        verb: str,
        message: dict[str, Any],
        peer: Peer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> Mapping[str, object] | None:
        """Carry out one validated request; None when the reply was streamed already."""
        target = self._target
        match verb:
            case "info":
                return self._info
            case "status":
                names = names_field(message, required=False)
                return await target.status(names, wait=wait_field(message))
            case "start":
                started, running = await target.start(names_field(message, required=True))
                return {
                    "processes": started,
                    "already_running": running,
                    "project_dir": self._info["project_dir"],
                }
            case "stop":
                acted = await target.stop(names_field(message, required=True))
                return {"processes": acted, "project_dir": self._info["project_dir"]}
            case "restart":
                acted = await target.restart(names_field(message, required=True))
                return {"processes": acted, "project_dir": self._info["project_dir"]}
            case "signal":
                names = names_field(message, required=True)
                sig = signal_field(message)
                group = flag_field(message, "group")
                return {"signal": sig.name, "results": target.send_signal(names, sig, group)}
            case "logs":
                names = names_field(message, required=False)
                count = lines_field(message)
                if flag_field(message, "follow"):
                    await self._follow(names, count, reader, writer)
                    return None
                pairs = target.recent_lines(names, count)
                return {"lines": [{"process": name, "line": line} for name, line in pairs]}
            case "shutdown":
                force = flag_field(message, "force")
                target.request_shutdown(f"requested on the control socket by pid {peer.pid}", force)
                return {"shutting_down": True}
            case "scale":
                scaled: ScaleResult = {
                    "scaled": await target.scale(counts_field(message)),
                    "project_dir": self._info["project_dir"],
                }
                return scaled
            case _:  # decode_request admits only VERB_FIELDS; a verb added there must be added here
                raise RequestError(f"verb {verb!r} is not implemented by this server")

    async def _follow(
        self,
        names: Sequence[str],
        count: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Stream recent then new lines until the client hangs up or the supervisor stops."""
        # Subscribe, then take the backlog, with no await in between: no line is lost or doubled
        # (as long as follow() subscribes when called, not at its first iteration).
        lines = self._target.follow(names)
        tasks: list[asyncio.Task[None]] = []
        try:
            backlog = self._target.recent_lines(names, count) if count else []
            writer.write(encode({"ok": True, "result": {"follow": True}}))
            for name, line in backlog:
                writer.write(encode({"process": name, "line": line}))
            await drain(writer)
            pump = asyncio.create_task(pump_lines(lines, writer))
            tasks = [pump, asyncio.create_task(until_eof(reader))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if pump.done():
                pump.result()  # the supervisor stopped (returns) or following failed (raises)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # An async generator must be closed to run its cleanup (unsubscribe); a literal name.
            close = getattr(lines, "aclose", None)
            if callable(close):
                await close()

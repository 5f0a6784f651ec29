"""Polled probes: one tcp, http or exec check of a process, and polling until one passes.

An attempt never raises for a failure: a refused connect, a 503, an exit 1 or a timeout is a
ProbeResult with `ok=False` and a short detail for the log. Each attempt is bounded by the
probe's timeout, and whatever it opened (a socket, a pipe, a process group) is gone when it
returns or is cancelled. Waits between attempts back off from 10 ms, so a process that is ready
in 30 ms is seen ready in about 30 ms, and one that takes a minute is not hammered.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

from procrun.output.lines import MAX_LINE_BYTES
from procrun.settings import POLLED_PROBES, SHELL, Probe, ProbeKind, expand_variables
from procrun.signals import send_group_signal, spawn_in_new_session

READ_BYTES = 64 * 1024
DETAIL_LINE_CHARS = 200
STATUS_LINE_BYTES = 64 * 1024
USER_AGENT = "procrun-probe"
URL_SAFE = "/%?=&;:@!$'()*+,~"  # already valid in a request line: kept as written

Env = Mapping[str, str]
OutputCallback = Callable[[bytes], None]


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    """Short and human: `connected`, `HTTP 503`, `connection refused`, `exit 1: <last line>`."""


class Children(Protocol):
    """procrun's one reaper (Reaper): it kills what is left of `pid`'s group, then reaps it."""

    def register(self, pid: int, on_exit: Callable[[int], None]) -> None: ...


async def check_once(
    probe: Probe,
    env: Env,
    cwd: Path,
    *,
    children: Children,
    on_output: OutputCallback | None = None,
) -> ProbeResult:
    """One attempt, within `probe.timeout_seconds`. ValueError for a kind that is not polled."""
    if probe.kind not in POLLED_PROBES:
        raise ValueError(f"a {probe.kind} probe is not polled: {probe.describe()}")
    try:
        async with asyncio.timeout(probe.timeout_seconds):
            if probe.kind is ProbeKind.TCP:
                return await _check_tcp(expand_variables(probe.target, env))
            if probe.kind is ProbeKind.HTTP:
                url = expand_variables(probe.target, env)
                return await _check_http(url, probe.status, probe.timeout_seconds)
            # Not expanded here: the shell expands $VAR from the same env, and quotes it right.
            return await _check_exec(probe.target, env, cwd, children, on_output)
    except TimeoutError:
        seconds = f"{probe.timeout_seconds:.3f}".rstrip("0").rstrip(".")
        return ProbeResult(False, f"timed out after {seconds} s")
    except OSError as error:
        return ProbeResult(False, _describe(error))


# --- tcp and http ---------------------------------------------------------------------------------


async def _check_tcp(target: str) -> ProbeResult:
    if (address := _host_port(target)) is None:
        return ProbeResult(False, f'expected "host:port", got "{target}"')
    _, writer = await _connect(*address)
    await _hang_up(writer)
    return ProbeResult(True, "connected")


async def _check_http(url: str, expected: int | None, seconds: float) -> ProbeResult:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.netloc.rpartition("@")[2].encode("idna").decode()  # with [brackets], :port
    except ValueError:  # a port that is no number or out of range; a bad name (UnicodeError)
        port = 0
    if parts.scheme not in ("http", "https") or not parts.hostname or not port:
        return ProbeResult(False, f'expected an http:// or https:// URL, got "{url}"')
    path = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=URL_SAFE)
    head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
    request = f"{head}Connection: close\r\n\r\n".encode()
    if parts.scheme == "https":
        # In a thread: `procrun start` imports asyncio without ssl (cli/main.py), so asyncio has
        # no TLS transport; the socket's timeout bounds the thread as the attempt's is bound.
        line = await asyncio.to_thread(_tls_status_line, parts.hostname, port, request, seconds)
    else:
        reader, writer = await _connect(parts.hostname, port)
        try:
            writer.write(request)
            await writer.drain()
            line = await reader.readline()
        except ValueError:  # over the stream's 64 KiB limit
            line = b"(a status line longer than 64 KiB)"
        finally:
            await _hang_up(writer)
    version, _, rest = line.partition(b" ")
    if not version.startswith(b"HTTP/") or not rest[:3].isdigit() or len(rest[:3]) != 3:
        shown = line.decode("ascii", "replace").strip()[:DETAIL_LINE_CHARS]
        return ProbeResult(False, f'bad status line: "{shown}"' if shown else "no response")
    status = int(rest[:3])
    ok = status == expected if expected is not None else 200 <= status < 300
    return ProbeResult(ok, f"HTTP {status}")


def _tls_status_line(host: str, port: int, request: bytes, timeout: float) -> bytes:
    # Verified certificates only: a probe that accepts any certificate proves nothing.
    context = ssl.create_default_context()
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(request)
        line = tls.makefile("rb").readline(STATUS_LINE_BYTES + 1)
    return line if len(line) <= STATUS_LINE_BYTES else b"(a status line longer than 64 KiB)"


def _host_port(target: str) -> tuple[str, int] | None:
    host, _, port = target.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:80
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


async def _connect(
    host: str, port: int, tls: ssl.SSLContext | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Each address of `host` in turn, raising the first error: asyncio's own loop merges them
    into one text ("Multiple exceptions: ..."), and `localhost` is often ::1 and 127.0.0.1."""
    if _is_address(host):  # no resolver thread for 127.0.0.1: many probes at once would queue
        return await asyncio.open_connection(host, port, ssl=tls, server_hostname=tls and host)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    name = host if tls else None  # what the certificate must name
    errors: list[OSError] = []  # getaddrinfo gives an address, or raises
    for *_, addr in infos:
        try:
            return await asyncio.open_connection(str(addr[0]), port, ssl=tls, server_hostname=name)
        except OSError as error:
            errors.append(error)
    raise errors[0]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _hang_up(writer: asyncio.StreamWriter) -> None:
    """Close politely; abort when the attempt ends meanwhile, so no socket outlives it."""
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass  # a reset while closing: the answer is already in
    except BaseException:
        writer.transport.abort()
        raise


def _describe(error: Exception) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS error: {error.reason or error}"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve: {error.strerror}"
    if isinstance(error, OSError) and error.errno and error.errno > 0:
        # asyncio's connect errors carry the address as their text; the errno says it shorter.
        described = os.strerror(error.errno).lower()
        return f"{described}: {error.filename}" if error.filename else described
    return str(error)


# --- exec ---------------------------------------------------------------------------------------


async def _check_exec(
    command: str, env: Env, cwd: Path, children: Children, on_output: OutputCallback | None
) -> ProbeResult:
    read_fd, write_fd = os.pipe()
    output = _OutputLines(read_fd, on_output)
    try:
        try:
            # Our own pipe, not Popen's: it is closed the moment the attempt ends, read or not.
            popen = spawn_in_new_session((SHELL, "-c", command), env, cwd, write_fd)
        except (OSError, subprocess.SubprocessError) as error:  # no such cwd, or no shell
            return ProbeResult(False, f"cannot start {SHELL}: {_describe(error)}")
        finally:
            os.close(write_fd)  # the child has its copy: EOF once its whole group is gone
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_exit(returncode: int) -> None:
            popen.returncode = returncode  # reaped: Popen must never wait for this pid itself
            exited.set_result(returncode)

        children.register(popen.pid, on_exit)  # before any await: the reaper runs in the loop
        try:
            returncode = await asyncio.shield(exited)
        finally:  # timed out or cancelled: kill the group (its leader unreaped, still its own)
            if not exited.done():
                send_group_signal(popen.pid, signal.SIGKILL)
            while not exited.done():  # and wait, through any cancellation, until it is reaped
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(exited)
        await output.finished  # the reaper killed what was left of the group: the pipe ends
    finally:
        output.close()
    if output.error is not None:
        raise output.error
    return _exit_result(returncode, output.last_line)


def _exit_result(returncode: int, last_line: bytes) -> ProbeResult:
    if returncode == 0:
        return ProbeResult(True, "exit 0")
    name = next((s.name for s in signal.Signals if s == -returncode), f"signal {-returncode}")
    detail = f"killed by {name}" if returncode < 0 else f"exit {returncode}"
    shown = last_line.decode("utf-8", "replace").strip()
    shown = shown if len(shown) <= DETAIL_LINE_CHARS else shown[: DETAIL_LINE_CHARS - 1] + "…"
    return ProbeResult(False, f"{detail}: {shown}" if shown else detail)


class _OutputLines:
    """The command's stdout and stderr, cut into lines for `on_output`; the last non-blank one
    is kept for the detail of a failure."""

    def __init__(self, fd: int, on_output: OutputCallback | None) -> None:
        self._fd = fd
        self._on_output = on_output
        self._tail = b""
        self._loop = asyncio.get_running_loop()
        self.last_line = b""
        # What on_output raised: raised when the attempt ends; reading goes on meanwhile, as a
        # child must never block on a full pipe.
        self.error: Exception | None = None
        self.finished: asyncio.Future[None] = self._loop.create_future()
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._fd, READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            if self._tail:  # the command's last line, without its newline
                self._emit(self._tail)
            self._loop.remove_reader(self._fd)
            self.finished.set_result(None)
            return
        *lines, self._tail = (self._tail + chunk).split(b"\n")
        while len(self._tail) > MAX_LINE_BYTES:  # bounded, as the relay bounds a process's lines
            lines.append(self._tail[:MAX_LINE_BYTES])
            self._tail = self._tail[MAX_LINE_BYTES:]
        for line in lines:
            self._emit(line)

    def _emit(self, line: bytes) -> None:
        if line.strip():
            self.last_line = line
        if self._on_output is None or self.error is not None:
            return
        try:
            self._on_output(line)
        except Exception as error:
            self.error = error

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1

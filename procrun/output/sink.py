"""procrun's stdout, where every relayed byte goes.

A pipe (docker logs, Render's log stream, `| head`) is written asynchronously, so a slow reader
pauses the relay instead of blocking the event loop (signals and timers go on). asyncio needs the
pipe non-blocking, and O_NONBLOCK belongs to the open file description, which is shared with
whoever started procrun (a `2>&1`, the next command in a pipeline): so procrun reopens the pipe
through /proc to get a description of its own. Terminals, files and sockets get plain blocking
writes: a terminal never stays blocked for long, and a shared one must not turn non-blocking.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable, Sequence

from procrun.output.pipesize import grow_pipe

STDOUT_HIGH_WATER_BYTES = 256 * 1024
# The unprivileged maximum (fs.pipe-max-size): procrun's one output pipe (see pipesize.py).
STDOUT_PIPE_BYTES = 1024 * 1024


class Sink:
    def __init__(self) -> None:
        self.on_pause: Callable[[], None] = lambda: None
        self.on_resume: Callable[[], None] = lambda: None
        self.on_lost: Callable[[], None] = lambda: None
        self.lost = False

    def write(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def writev(self, parts: Sequence[bytes | memoryview]) -> None:
        """Write `parts` in order, each as it is: the relay hands over its prefixed copy of a
        chunk as a view, and joining the parts would copy it again."""
        for part in parts:
            self.write(part)

    async def aclose(self) -> None:
        """Flush what is buffered."""

    def abandon(self) -> None:
        """Drop whatever is buffered and write nothing more (a forced stop, a stalled reader)."""
        self.mark_lost()

    def mark_lost(self) -> None:
        if not self.lost:
            self.lost = True
            self.on_lost()


class BlockingSink(Sink):
    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def write(self, data: bytes | memoryview) -> None:
        if self.lost:
            return
        view = memoryview(data)
        try:
            while view:
                try:
                    view = view[os.write(self._fd, view) :]
                except BlockingIOError:
                    # Someone left the description non-blocking: wait rather than drop the line.
                    os.set_blocking(self._fd, True)
        except OSError:  # EPIPE, EIO: the reader is gone
            self.mark_lost()


class _PipeProtocol(asyncio.Protocol):
    def __init__(self, sink: PipeSink) -> None:
        self._sink = sink

    def pause_writing(self) -> None:
        self._sink.on_pause()

    def resume_writing(self) -> None:
        self._sink.on_resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self._sink.closed.set()
        # asyncio reports a reader that went away with an empty buffer as a clean close.
        if not self._sink.closing:
            self._sink.mark_lost()


class PipeSink(Sink):
    def __init__(self, private_fd: int) -> None:
        super().__init__()
        self._fd = private_fd
        self._transport: asyncio.WriteTransport | None = None
        self.closed = asyncio.Event()
        self.closing = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(self._fd, "wb", buffering=0)
        transport, _ = await loop.connect_write_pipe(lambda: _PipeProtocol(self), pipe)
        transport.set_write_buffer_limits(high=STDOUT_HIGH_WATER_BYTES)
        self._transport = transport

    def write(self, data: bytes | memoryview) -> None:
        if self.lost or self._transport is None or self._transport.is_closing():
            return
        self._transport.write(data)

    async def aclose(self) -> None:
        if self._transport is None or self.closed.is_set():
            return
        self.closing = True
        self._transport.close()
        await self.closed.wait()

    def abandon(self) -> None:
        if self._transport is not None and not self.closed.is_set():
            self.closing = True
            self._transport.abort()
        super().abandon()


async def open_stdout_sink(fd: int = 1) -> Sink:
    if stat.S_ISFIFO(os.fstat(fd).st_mode):
        try:
            # A new open file description for the same pipe (Linux); O_NONBLOCK fails at once
            # instead of waiting when nobody reads any more.
            private = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return BlockingSink(fd)
        grow_pipe(private, STDOUT_PIPE_BYTES)
        sink = PipeSink(private)
        await sink.open()
        return sink
    return BlockingSink(fd)

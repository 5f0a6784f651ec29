"""The line relay: every child's output reaches procrun's stdout as whole, prefixed lines.

Children write in any chunk size (C stdio writes 4096-byte blocks ending mid-line). Each child has
a LineAssembler that keeps the unfinished tail of its output and emits only complete lines, so lines
of different processes never mix. Work is done per chunk with bytes methods, not per line in Python.
A tail is flushed after a short pause or at EOF; a line over the bound is split with a marker,
so memory per child is bounded. When stdout is a pipe that fills up, reading from every child stops
until it drains: the children block on their own writes, nothing is dropped.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from procrun.heap import keep_heap_for_bursts
from procrun.loghistory import LogHistory
from procrun.pipesize import grow_pipe
from procrun.stdout import Sink

MAX_LINE_BYTES = 64 * 1024
# Child pipes grow to 256 KiB while fewer than 32 are relayed: at most 8 MiB of kernel memory in
# all (procrun/pipesize.py); a larger formation keeps the default for the rest.
CHILD_PIPE_BYTES = 256 * 1024
MAX_GROWN_CHILD_PIPES = 32
# A read larger than a default pipe holds: a child is flooding (procrun/heap.py).
BURST_READ_BYTES = 64 * 1024
PARTIAL_LINE_FLUSH_SECONDS = 0.25
CONTINUED_MARKER = b" [procrun: line continues]"
_COLOURS = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94)


@dataclass(frozen=True)
class OutputStyle:
    colour: bool = False
    timestamps: bool = False
    json: bool = False  # one JSON object per child line, for log drains


def use_colour(isatty: bool, environ: Mapping[str, str]) -> bool:
    """NO_COLOR wins (no-color.org), then FORCE_COLOR, then whether stdout is a terminal."""
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return isatty


# --- the relay ----------------------------------------------------------------------------------


class Relay:
    """The one owner of what the user sees: child lines and procrun's own event lines."""

    def __init__(self, sink: Sink, style: OutputStyle, history: LogHistory | None = None) -> None:
        self.sink = sink
        self.style = style
        self.history = history or LogHistory()
        self.on_lost: Callable[[], None] = lambda: None
        self.paused = False
        self._width = len("procrun")
        self._colours: dict[str, int] = {}
        self._prefixes: dict[str, bytes] = {}
        self._readers: dict[asyncio.ReadTransport, LineAssembler] = {}
        self._pausing: asyncio.Handle | None = None
        self._no_readers = asyncio.Event()
        self._no_readers.set()
        sink.on_pause = self._pause_readers
        sink.on_resume = self._resume_readers
        sink.on_lost = self._on_sink_lost

    def reserve(self, names: list[str]) -> None:
        """Pad every prefix to the longest name, so the columns line up from the first line."""
        self._width = max([self._width, *map(len, names)])
        self._prefixes.clear()

    def prefix(self, name: str, kind: str) -> bytes:
        cached = self._prefixes.get(name)
        if cached is not None:
            return cached
        label = name.ljust(self._width)
        if self.style.timestamps:
            label = f"{time.strftime('%H:%M:%S')} {label}"
        if self.style.colour:
            colour = self._colours.setdefault(kind, _COLOURS[len(self._colours) % len(_COLOURS)])
            prefix = f"\x1b[{colour}m{label} |\x1b[0m ".encode()
        else:
            prefix = f"{label} | ".encode()
        if not self.style.timestamps:
            self._prefixes[name] = prefix
        return prefix

    # --- writing ---------------------------------------------------------------------------------

    def emit_lines(self, name: str, kind: str, block: bytes, continued: bool = False) -> None:
        """Write `block`: one or more complete lines of one process, without the final newline."""
        self.history.record(name, block)
        if self.style.json:
            self._emit_json(name, block, continued)
            return
        prefix = self.prefix(name, kind)
        marker = CONTINUED_MARKER if continued else b""
        self.sink.write(b"".join((prefix, block.replace(b"\n", b"\n" + prefix), marker, b"\n")))

    def _emit_json(self, name: str, block: bytes, continued: bool) -> None:
        now = time.time()
        records = []
        for line in block.split(b"\n"):
            record: dict[str, Any] = {
                "time": now,
                "process": name,
                "line": line.decode("utf-8", "replace"),
            }
            if continued:
                record["continued"] = True
            records.append(json.dumps(record, ensure_ascii=False))
        self.sink.write(("\n".join(records) + "\n").encode())

    def emit_event(self, rendered: str) -> None:
        """One of procrun's own log events, already rendered by structlog."""
        if self.style.json or rendered.startswith("{"):
            self.history.record("procrun", rendered.encode())
            self.sink.write(rendered.encode() + b"\n")
        else:
            self.emit_lines("procrun", "procrun", rendered.encode())

    # --- reading ---------------------------------------------------------------------------------

    async def attach(self, name: str, kind: str, fd: int, done: asyncio.Future[None]) -> None:
        """Relay the pipe `fd` (read end, owned from now on); `done` completes at EOF."""
        loop = asyncio.get_running_loop()
        if len(self._readers) < MAX_GROWN_CHILD_PIPES:
            grow_pipe(fd, CHILD_PIPE_BYTES)
        assembler = LineAssembler(self, name, kind, loop)
        pipe = os.fdopen(fd, "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(
            lambda: _ChildOutputProtocol(self, assembler, done), pipe
        )
        self._readers[transport] = assembler
        self._no_readers.clear()
        if self.paused:
            transport.pause_reading()

    def detach(self, transport: asyncio.ReadTransport) -> None:
        self._readers.pop(transport, None)
        if not self._readers:
            self._no_readers.set()

    def after_drain(
        self, drained: asyncio.Future[None], bound: float, callback: Callable[[], None]
    ) -> None:
        """Call `callback` once `drained` is done, or after `bound` seconds of reading time: a
        daemonised grandchild may hold a pipe open for ever, but time spent held back by a full
        stdout does not count, or a slow reader would lose the last lines."""
        loop = asyncio.get_running_loop()
        guard: asyncio.TimerHandle | None = None

        def fire() -> None:
            if guard is not None:
                guard.cancel()
            if not fired.done():
                fired.set_result(None)
                callback()

        def on_guard() -> None:
            nonlocal guard
            guard = loop.call_later(bound, on_guard) if self.paused else None
            if guard is None:
                fire()

        fired: asyncio.Future[None] = loop.create_future()
        guard = loop.call_later(bound, on_guard)
        drained.add_done_callback(lambda _: fire())

    def _pause_readers(self) -> None:
        # At the end of this pass of the event loop, not at once: every pipe already found
        # readable in this pass keeps its read. Pausing at once would skip them whenever the
        # first reader's batch refills stdout, and a flooding process would starve a quiet one.
        # The price: stdout's buffer may pass the high-water mark by one read per ready pipe.
        self.paused = True
        if self._pausing is None:
            self._pausing = asyncio.get_running_loop().call_soon(self._pause_now)

    def _pause_now(self) -> None:
        self._pausing = None
        if self.paused:
            for reader in self._readers:
                reader.pause_reading()

    def _resume_readers(self) -> None:
        self.paused = False
        for reader, assembler in self._readers.items():
            reader.resume_reading()
            assembler.rearm()

    def _on_sink_lost(self) -> None:
        # Nobody reads any more: keep draining children (their output is dropped) so none blocks.
        self._resume_readers()
        self.on_lost()

    def abandon(self) -> None:
        """Stop waiting for stdout (a forced stop): what is buffered is dropped."""
        self.sink.abandon()

    async def close(self, within: float) -> None:
        """Relay what children still have to say, then flush stdout; abandon both after
        `within` seconds (a reader that stalls for ever must not keep procrun from exiting)."""
        try:
            async with asyncio.timeout(within):
                await self._no_readers.wait()
                await self.sink.aclose()
        except TimeoutError:
            self.abandon()
            for reader in list(self._readers):
                reader.close()


class LineAssembler:
    """Cuts one child's byte stream into complete lines."""

    def __init__(self, relay: Relay, name: str, kind: str, loop: asyncio.AbstractEventLoop) -> None:
        self._relay = relay
        self._name = name
        self._kind = kind
        self._loop = loop
        self._tail = b""
        self._flush_timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0

    def feed(self, chunk: bytes) -> None:
        self._last_data = self._loop.time()
        cut = chunk.rfind(b"\n")  # the tail never holds a newline: search the new bytes only
        if cut < 0:
            self._tail += chunk
        else:
            # One copy, not two, when a partial line is carried over (block writes end mid-line).
            block = b"".join((self._tail, memoryview(chunk)[:cut])) if self._tail else chunk[:cut]
            self._tail = chunk[cut + 1 :]
            self._emit_complete(block)
        while len(self._tail) > MAX_LINE_BYTES:
            head, self._tail = _split_at_char_boundary(self._tail, MAX_LINE_BYTES)
            self._relay.emit_lines(self._name, self._kind, head, continued=True)
        self.rearm()

    def rearm(self) -> None:
        if self._tail and self._flush_timer is None:
            self._flush_timer = self._loop.call_later(
                PARTIAL_LINE_FLUSH_SECONDS, self._on_flush_timer
            )

    def _emit_complete(self, block: bytes) -> None:
        # The common, fast case: no over-long line, the block goes out whole. Only a block with
        # one is cut line by line (a full pipe's read is just over the bound most of the time).
        if not _has_over_long_line(block):
            self._relay.emit_lines(self._name, self._kind, block)
            return
        run: list[bytes] = []
        for line in block.split(b"\n"):
            if len(line) <= MAX_LINE_BYTES:
                run.append(line)
                continue
            if run:
                self._relay.emit_lines(self._name, self._kind, b"\n".join(run))
                run = []
            while len(line) > MAX_LINE_BYTES:
                head, line = _split_at_char_boundary(line, MAX_LINE_BYTES)
                self._relay.emit_lines(self._name, self._kind, head, continued=True)
            run.append(line)
        if run:
            self._relay.emit_lines(self._name, self._kind, b"\n".join(run))

    def _on_flush_timer(self) -> None:
        """Flush the tail only once the child has been quiet for the whole delay. While reading
        is paused the rest of the line is waiting in the pipe, not missing: the relay re-arms
        the timer when it resumes."""
        self._flush_timer = None
        if self._relay.paused:
            return
        quiet_since = self._loop.time() - self._last_data
        if quiet_since < PARTIAL_LINE_FLUSH_SECONDS:
            self._flush_timer = self._loop.call_later(
                PARTIAL_LINE_FLUSH_SECONDS - quiet_since, self._on_flush_timer
            )
            return
        self._flush_tail()

    def _flush_tail(self) -> None:
        if self._tail:
            tail, self._tail = self._tail, b""
            self._relay.emit_lines(self._name, self._kind, tail)

    def close(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._flush_tail()


def _has_over_long_line(block: bytes) -> bool:
    """Whether a line in `block` (lines without the final newline) exceeds MAX_LINE_BYTES. Every
    window of MAX_LINE_BYTES + 1 bytes from a line start must hold a newline; jumping to the
    window's last one checks a 256 KiB block in a handful of C-speed searches."""
    start = 0
    while len(block) - start > MAX_LINE_BYTES:
        newline = block.rfind(b"\n", start, start + MAX_LINE_BYTES + 1)
        if newline < 0:
            return True
        start = newline + 1
    return False


def _split_at_char_boundary(data: bytes, limit: int) -> tuple[bytes, bytes]:
    """Split near `limit` without cutting a UTF-8 sequence (continuation bytes are 0b10xxxxxx)."""
    cut = limit
    while cut > limit - 4 and cut > 0 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    if cut <= limit - 4 or cut == 0:
        cut = limit  # not UTF-8 after all: cut where the bound says
    return data[:cut], data[cut:]


class _ChildOutputProtocol(asyncio.Protocol):
    def __init__(self, relay: Relay, assembler: LineAssembler, done: asyncio.Future[None]) -> None:
        self._relay = relay
        self._assembler = assembler
        self._done = done
        self._transport: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.ReadTransport):
            self._transport = transport

    def data_received(self, data: bytes) -> None:
        if len(data) > BURST_READ_BYTES:
            keep_heap_for_bursts()
        self._assembler.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._assembler.close()
        if self._transport is not None:
            self._relay.detach(self._transport)
        if not self._done.done():
            self._done.set_result(None)

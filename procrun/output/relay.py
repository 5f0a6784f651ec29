"""The line relay: every child's output reaches procrun's stdout as whole, prefixed lines.

Each child's pipe is read into its own LineAssembler (lines.py), which hands complete lines back
here to be prefixed and written, together with procrun's own event lines. When stdout is a pipe
that fills up, reading from every child stops until it drains: the children block on their own
writes, nothing is dropped. Timers run on the injected Clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from procrun.clock import Clock, Timer
from procrun.output.heap import keep_heap_for_bursts
from procrun.output.history import LogHistory
from procrun.output.lines import LineAssembler
from procrun.output.pipesize import grow_pipe
from procrun.output.sink import Sink

# Child pipes grow to 256 KiB while fewer than 32 are relayed: at most 8 MiB of kernel memory in
# all (procrun/output/pipesize.py); a larger formation keeps the default for the rest.
CHILD_PIPE_BYTES = 256 * 1024
MAX_GROWN_CHILD_PIPES = 32
# A read larger than a default pipe holds: a child is flooding (procrun/output/heap.py).
BURST_READ_BYTES = 64 * 1024
# Below this, a chunk's lines are joined to their first line's start and written at once, as
# emit_lines does; above, the chunk is handed over apart, so that it is not copied again.
JOIN_BELOW_BYTES = 16 * 1024
CONTINUED_MARKER = b" [procrun: line continues]"
MAX_HELD_BYTES = 256 * 1024
# While a pause is pending, each pipe still read in this pass of the loop takes at most this
# much: one pass of 50 flooders then queues ~0.5 MiB behind stdout, not ~9 MiB, and a quiet
# process's line waits that long (issue 18, fairness). asyncio's own read size comes back on
# resume, so throughput is unchanged.
PAUSING_READ_BYTES = 4 * 1024
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

    def __init__(
        self,
        sink: Sink,
        style: OutputStyle,
        *,
        clock: Clock,
        history: LogHistory | None = None,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.style = style
        self.history = history or LogHistory()
        self.on_lost: Callable[[], None] = lambda: None
        self.paused = False
        self._width = len("procrun")
        self._colours: dict[str, int] = {}
        self._prefixes: dict[str, bytes] = {}
        self._readers: dict[asyncio.ReadTransport, LineAssembler] = {}
        self._held: dict[str, list[bytes]] = {}
        self._held_bytes: dict[str, int] = {}
        self._shown: set[str] = set()
        self._taps: dict[str, Callable[[bytes], None]] = {}
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
        """Write `block`: one or more complete lines of one process, without the final newline.
        While `name` is held (hold()) the lines are kept back instead, up to a bound."""
        self.history.record(name, block)
        if self._taps and (tap := self._taps.get(name)) is not None:
            tap(block)
        if self._held and (held := self._held.get(name)) is not None:
            shown = name in self._shown
            if self._held_bytes[name] <= MAX_HELD_BYTES:  # the copy stays bounded
                held.append(block + CONTINUED_MARKER if continued else block)
                self._held_bytes[name] += len(block)
                if not shown and self._held_bytes[name] > MAX_HELD_BYTES:
                    self._shown.add(name)  # too much to keep back: out it goes, and the rest
                    self._write(name, kind, b"\n".join(held), False)
                    return
            if shown:
                self._write(name, kind, block, continued)
            return
        self._write(name, kind, block, continued)

    def emit_chunk(self, name: str, kind: str, head: bytes, chunk: bytes, end: int) -> None:
        """Write the complete lines `head + chunk[:end]` (lines.py, LineSink) with no copy but
        the prefixed one: a block write of a flooding child comes through here."""
        if (
            end < JOIN_BELOW_BYTES  # copying so little costs less than a second write
            or self.style.json
            or (self._taps and name in self._taps)
            or name in self._held
        ):
            self.emit_lines(name, kind, head + chunk[:end])
            return
        self.history.record_chunk(name, head, chunk, end)
        prefix = self.prefix(name, kind)
        prefixed = chunk.replace(b"\n", b"\n" + prefix)
        # Up to the last newline, the one at chunk[end]: not the prefix after it, nor the tail.
        stop = len(prefixed) - (len(chunk) - end - 1) - len(prefix)
        self.sink.writev((prefix + head, memoryview(prefixed)[:stop]))

    def tap(self, name: str, reader: Callable[[bytes], None] | None) -> None:
        """Hand every block of `name`'s lines to `reader` too (a log readiness probe), or stop
        with None: read as the lines pass, with no polling."""
        if reader is None:
            self._taps.pop(name, None)
        else:
            self._taps[name] = reader

    def hold(self, name: str, *, show: bool = False) -> None:
        """Keep a copy of `name`'s lines until release() (a crash loop's next run, crashloop.py);
        unless `show`, keep them back too."""
        self._held[name] = []
        self._held_bytes[name] = 0
        if show:
            self._shown.add(name)
        else:
            self._shown.discard(name)

    def was_shown(self, name: str) -> bool:
        """Whether the lines held for `name` were written already (shown, or too many)."""
        return name in self._shown

    def release(self, name: str) -> bytes | None:
        """Stop holding `name`; the lines kept back, or None if it was not held."""
        self._held_bytes.pop(name, None)
        self._shown.discard(name)
        blocks = self._held.pop(name, None)
        return b"\n".join(blocks) if blocks else None

    def write_held(self, name: str, kind: str, block: bytes) -> None:
        """Write lines that were held (they are in the history already)."""
        if block:
            self._write(name, kind, block, False)

    def _write(self, name: str, kind: str, block: bytes, continued: bool) -> None:
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
        assembler = LineAssembler(self, name, kind, self.clock)
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
        clock = self.clock
        guard: Timer | None = None
        fired = False

        def fire() -> None:
            nonlocal fired
            if guard is not None:
                guard.cancel()
            if not fired:
                fired = True
                callback()

        def on_guard() -> None:
            nonlocal guard
            guard = clock.call_at(clock.now() + bound, on_guard) if self.paused else None
            if guard is None:
                fire()

        guard = clock.call_at(clock.now() + bound, on_guard)
        drained.add_done_callback(lambda _: fire())

    def _pause_readers(self) -> None:
        # At the end of this pass of the event loop, not at once: every pipe already found
        # readable in this pass keeps its read. Pausing at once would skip them whenever the
        # first reader's batch refills stdout, and a flooding process would starve a quiet one.
        # The price: stdout's buffer may pass the high-water mark by one read per ready pipe.
        self.paused = True
        if self._pausing is None:
            for reader in self._readers:
                _set_read_size(reader, PAUSING_READ_BYTES)
            self._pausing = asyncio.get_running_loop().call_soon(self._pause_now)

    def _pause_now(self) -> None:
        self._pausing = None
        if self.paused:
            for reader in self._readers:
                reader.pause_reading()

    def _resume_readers(self) -> None:
        self.paused = False
        for reader, assembler in self._readers.items():
            _set_read_size(reader, None)
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


def _set_read_size(transport: asyncio.ReadTransport, size: int | None) -> None:
    """Cap how much one read of the pipe takes (None: asyncio's default). CPython's Unix pipe
    transport reads `max_size` bytes at a time, a class attribute; an instance value shadows
    it. Another transport (uvloop's) has none, and keeps its own size."""
    if size is None:
        vars(transport).pop("max_size", None)
    elif hasattr(transport, "max_size"):
        transport.max_size = size


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

"""Line assembly: one child's byte stream cut into complete lines, with bounded memory.

Children write in any chunk size (C stdio writes 4096-byte blocks ending mid-line). Each child has
a LineAssembler that keeps the unfinished tail of its output and emits only complete lines, so lines
of different processes never mix. Work is done per chunk with bytes methods, not per line in Python,
and a chunk is handed on as it was read, with the tail carried over from the last one beside it:
joining the two would copy every relayed byte once more (issue 18). A tail is flushed after a short
pause or at EOF; a line over the bound is split with a marker.
"""

from __future__ import annotations

from typing import Protocol

from procrun.clock import Clock, Timer

MAX_LINE_BYTES = 64 * 1024
PARTIAL_LINE_FLUSH_SECONDS = 0.25


class LineSink(Protocol):
    """Where whole lines go (the Relay); `paused` while stdout cannot take more."""

    paused: bool

    def emit_lines(self, name: str, kind: str, block: bytes, continued: bool = False) -> None: ...

    def emit_chunk(self, name: str, kind: str, head: bytes, chunk: bytes, end: int) -> None:
        """Complete lines `head + chunk[:end]` (without the final newline); `chunk[end]` is a
        newline and `chunk` holds no newline after it."""
        ...


class LineAssembler:
    """Cuts one child's byte stream into complete lines."""

    def __init__(self, sink: LineSink, name: str, kind: str, clock: Clock) -> None:
        self._relay = sink
        self._name = name
        self._kind = kind
        self._clock = clock
        self._tail = b""
        self._flush_timer: Timer | None = None
        self._last_data = 0.0

    def feed(self, chunk: bytes) -> None:
        self._last_data = self._clock.now()
        cut = chunk.rfind(b"\n")  # the tail never holds a newline: search the new bytes only
        if cut < 0:
            self._tail += chunk
        else:
            head, self._tail = self._tail, chunk[cut + 1 :]
            if _has_over_long_line(chunk, cut, len(head)):
                self._emit_cut(head + chunk[:cut])
            else:  # the common case: the lines go out whole, as read
                self._relay.emit_chunk(self._name, self._kind, head, chunk, cut)
        while len(self._tail) > MAX_LINE_BYTES:
            head, self._tail = _split_at_char_boundary(self._tail, MAX_LINE_BYTES)
            self._relay.emit_lines(self._name, self._kind, head, continued=True)
        self.rearm()

    def rearm(self) -> None:
        if self._tail and self._flush_timer is None:
            self._flush_timer = self._clock.call_at(
                self._clock.now() + PARTIAL_LINE_FLUSH_SECONDS, self._on_flush_timer
            )

    def _emit_cut(self, block: bytes) -> None:
        """Lines of which some are over the bound: those are cut, the runs between them go out
        whole."""
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
        quiet_since = self._clock.now() - self._last_data
        if quiet_since < PARTIAL_LINE_FLUSH_SECONDS:
            self._flush_timer = self._clock.call_at(
                self._last_data + PARTIAL_LINE_FLUSH_SECONDS, self._on_flush_timer
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


def _has_over_long_line(chunk: bytes, end: int, carried: int) -> bool:
    """Whether a line of `chunk[:end]`, the first one `carried` bytes longer, exceeds
    MAX_LINE_BYTES. Every window of MAX_LINE_BYTES + 1 bytes from a line start must hold a
    newline; jumping to the window's last one checks a 256 KiB chunk in a handful of C-speed
    searches."""
    start = 0
    if carried:  # the first line started in an earlier chunk; chunk[end] is a newline
        first = chunk.find(b"\n", 0, end + 1)
        if carried + first > MAX_LINE_BYTES:
            return True
        start = first + 1
    while end - start > MAX_LINE_BYTES:
        newline = chunk.rfind(b"\n", start, start + MAX_LINE_BYTES + 1)
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

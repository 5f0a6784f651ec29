"""The line relay as a unit: chunks in, whole prefixed lines out."""

import asyncio
import fcntl
import os
import re
from collections.abc import Callable

import pytest

from procrun.output.lines import LineAssembler
from procrun.output.relay import (
    CHILD_PIPE_BYTES,
    MAX_GROWN_CHILD_PIPES,
    PAUSING_READ_BYTES,
    OutputStyle,
    Relay,
    use_colour,
)
from tests.fakeclock import FakeClock
from tests.harness import DEADLINE_SECONDS
from tests.sinks import CollectingSink


def relay_with(style: OutputStyle | None = None) -> tuple[Relay, CollectingSink]:
    sink = CollectingSink()
    relay = Relay(sink, style or OutputStyle(), clock=FakeClock())
    relay.reserve(["web.1", "worker.1"])
    return relay, sink


def test_colour_rules() -> None:
    assert use_colour(True, {}) is True
    assert use_colour(False, {}) is False
    assert use_colour(True, {"NO_COLOR": "1"}) is False
    assert use_colour(False, {"FORCE_COLOR": "1"}) is True
    assert use_colour(True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}) is False


@pytest.mark.parametrize("timestamps", [False, True])
def test_colour_prefix_resets_after_the_name(timestamps: bool) -> None:
    relay, sink = relay_with(OutputStyle(colour=True, timestamps=timestamps))
    relay.emit_lines("web.1", "web", b"hi")
    assert sink.data.startswith(b"\x1b[")
    assert b"\x1b[0m hi\n" in sink.data


async def test_the_drain_guard_does_not_run_while_stdout_is_full() -> None:
    """An exit waits for the child's last lines; a full stdout must not make it give up on them
    (they are in the pipe, waiting for the reader)."""
    clock = FakeClock()
    sink = CollectingSink()
    relay = Relay(sink, OutputStyle(), clock=clock)
    never_drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fired: list[None] = []
    sink.on_pause()
    relay.after_drain(never_drained, 0.05, lambda: fired.append(None))
    clock.advance(0.3)  # six guard periods while paused
    assert fired == []
    sink.on_resume()
    clock.advance(0.05)
    assert fired == [None]


async def test_the_drain_guard_gives_up_on_a_pipe_held_open() -> None:
    clock = FakeClock()
    relay = Relay(CollectingSink(), OutputStyle(), clock=clock)
    never_drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fired: list[None] = []
    relay.after_drain(never_drained, 0.05, lambda: fired.append(None))
    clock.advance(0.049)
    assert fired == []
    clock.advance(0.001)
    assert fired == [None]


async def test_a_drained_pipe_fires_once_and_cancels_the_guard() -> None:
    clock = FakeClock()
    relay = Relay(CollectingSink(), OutputStyle(), clock=clock)
    drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fired: list[None] = []
    relay.after_drain(drained, 0.05, lambda: fired.append(None))
    drained.set_result(None)
    await asyncio.sleep(0)  # the future's callbacks run on the next pass of the loop
    clock.advance(1.0)
    assert fired == [None]
    assert clock.pending() == []


async def test_child_pipes_grow_while_few_are_relayed() -> None:
    """Up to MAX_GROWN_CHILD_PIPES pipes at a time get CHILD_PIPE_BYTES (fewer, bigger batches);
    past that, pipes keep the default, so procrun's share of the user's pipe quota stays small."""
    relay, _ = relay_with()
    pipes = [os.pipe() for _ in range(MAX_GROWN_CHILD_PIPES + 1)]
    done = [asyncio.get_running_loop().create_future() for _ in pipes]
    try:
        for (read_end, _), finished in zip(pipes, done, strict=True):
            await relay.attach("web.1", "web", read_end, finished)
        sizes = [fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ) for _, write_end in pipes]
        assert sizes[:-1] == [CHILD_PIPE_BYTES] * MAX_GROWN_CHILD_PIPES
        assert sizes[-1] < CHILD_PIPE_BYTES
    finally:
        for _, write_end in pipes:
            os.close(write_end)  # EOF: the relay closes the read ends
        await asyncio.wait_for(asyncio.gather(*done), DEADLINE_SECONDS)


class FillsAtOnce(CollectingSink):
    """stdout that is full after its first write, as a slow reader's pipe is under a flood."""

    def write(self, data: bytes | memoryview) -> None:
        super().write(data)
        if not self.data[: -len(data)]:
            self.on_pause()


async def test_once_stdout_is_full_the_other_ready_pipes_take_one_small_read() -> None:
    """Fairness under a flood: a pipe found readable in the pass that filled stdout still gets
    its read (so a quiet process is not starved), but a small one, so the pass does not queue
    megabytes behind stdout; on resume every pipe reads at full size again."""
    sink = FillsAtOnce()
    relay = Relay(sink, OutputStyle(), clock=FakeClock())
    line = b"x" * 63 + b"\n"  # 64 bytes: a small read ends on a line's end
    lines_each = 1000
    pipes = [os.pipe() for _ in range(2)]
    done = [asyncio.get_running_loop().create_future() for _ in pipes]
    try:
        for name, (read_end, _), finished in zip(("a", "b"), pipes, done, strict=True):
            await relay.attach(name, name, read_end, finished)
        for _, write_end in pipes:  # both readable in the same pass of the loop
            assert os.write(write_end, line * lines_each) == len(line) * lines_each
        # Both read in one pass; the pause, due at its end, runs before any pipe is read again.
        await wait_for_counts(sink, lambda seen: 0 not in seen)
        assert sorted(counts(sink)) == [PAUSING_READ_BYTES // len(line), lines_each]
        sink.on_resume()
        await wait_for_counts(sink, lambda seen: seen == [lines_each, lines_each])
    finally:
        sink.on_resume()
        for _, write_end in pipes:
            os.close(write_end)
        await asyncio.wait_for(asyncio.gather(*done), DEADLINE_SECONDS)
    assert counts(sink) == [lines_each, lines_each]


async def wait_for_counts(sink: CollectingSink, done: Callable[[list[int]], bool]) -> None:
    async with asyncio.timeout(DEADLINE_SECONDS):
        while not done(counts(sink)):
            sink.written.clear()
            await sink.written.wait()


def counts(sink: CollectingSink) -> list[int]:
    """Whole relayed lines of a and of b."""
    return [len(re.findall(rb"^%s +\| x" % name, sink.data, re.MULTILINE)) for name in (b"a", b"b")]


async def test_a_burst_keeps_the_heap_and_ordinary_output_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read larger than a default pipe (a child flooding) turns on procrun/output/heap.py's
    thresholds; ordinary output leaves glibc's defaults alone. Each write lands in the pipe
    before the loop reads it, so each is one read."""
    calls: list[None] = []
    monkeypatch.setattr("procrun.output.relay.keep_heap_for_bursts", lambda: calls.append(None))
    relay, sink = relay_with()
    read_end, write_end = os.pipe()
    done = asyncio.get_running_loop().create_future()
    await relay.attach("web.1", "web", read_end, done)
    try:
        os.write(write_end, b"one line\n" * 100 + b"small done\n")
        await sink.wait_for(r"small done\n", DEADLINE_SECONDS)
        assert calls == []
        burst = (b"x" * 59 + b"\n") * 3000 + b"burst done\n"  # 180 KB: fits the grown pipe
        assert os.write(write_end, burst) == len(burst)
        await sink.wait_for(r"burst done\n", DEADLINE_SECONDS)
        assert calls == [None]
    finally:
        os.close(write_end)
        await asyncio.wait_for(done, DEADLINE_SECONDS)


def test_held_lines_stay_bounded_and_come_out_in_order_when_too_many() -> None:
    """A crash loop's next run is held (crashloop.py); a run that says more than the bound is
    written after all, every line once, in order, and the copy stops growing."""
    relay, sink = relay_with()
    relay.hold("web.1")
    for i in range(400):  # about 400 KB, more than the bound
        relay.emit_lines("web.1", "web", b"%d " % i + b"x" * 1000)
    assert relay.was_shown("web.1")
    numbers = [int(n) for n in re.findall(rb"\| (\d+) x", bytes(sink.data))]
    assert numbers == list(range(400))
    held = relay.release("web.1")
    assert held is not None
    assert len(held) < 300 * 1024, "the copy is bounded"


def test_held_lines_are_kept_back_until_written() -> None:
    relay, sink = relay_with()
    relay.hold("web.1")
    relay.emit_lines("web.1", "web", b"Traceback")
    assert sink.data == b""
    held = relay.release("web.1")
    assert held == b"Traceback"
    relay.write_held("web.1", "web", held)
    assert bytes(sink.data) == b"web.1    | Traceback\n"
    assert relay.history.recent([], 10) == [("web.1", "Traceback")], "in the history at once"


def test_lines_read_in_blocks_are_held_and_tapped_like_any_other() -> None:
    """A chunk read from a child goes out as it was read only when nothing else wants the lines:
    held (a crash loop's run) or tapped (a log probe), they are kept and handed over whole."""
    relay, sink = relay_with()
    tapped: list[bytes] = []
    relay.hold("web.1")
    relay.tap("web.1", tapped.append)
    assembler = LineAssembler(relay, "web.1", "web", FakeClock())
    for chunk in (b"Trace", b"back\n  File", b' "app.py"\nError\n'):
        assembler.feed(chunk)
    assert sink.data == b""
    assert tapped == [b"Traceback", b'  File "app.py"\nError']
    assert relay.release("web.1") == b'Traceback\n  File "app.py"\nError'
    relay.tap("web.1", None)
    assembler.feed(b"next\n")
    assert bytes(sink.data) == b"web.1    | next\n"

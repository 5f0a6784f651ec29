"""The line relay as a unit: chunks in, whole prefixed lines out."""

import asyncio
import fcntl
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procrun.output import (
    CHILD_PIPE_BYTES,
    CONTINUED_MARKER,
    MAX_GROWN_CHILD_PIPES,
    MAX_LINE_BYTES,
    LineAssembler,
    OutputStyle,
    Relay,
    use_colour,
)
from tests.harness import DEADLINE_SECONDS
from tests.sinks import CollectingSink


def relay_with(style: OutputStyle | None = None) -> tuple[Relay, CollectingSink]:
    sink = CollectingSink()
    relay = Relay(sink, style or OutputStyle())
    relay.reserve(["web.1", "worker.1"])
    return relay, sink


async def test_lines_split_across_chunks_come_out_whole() -> None:
    relay, sink = relay_with()
    assembler = LineAssembler(relay, "web.1", "web", asyncio.get_running_loop())
    for chunk in (b"hel", b"lo\nwor", b"ld\n", b"a\nb\nc"):
        assembler.feed(chunk)
    assembler.close()
    assert sink.data.decode().splitlines() == [
        "web.1    | hello",
        "web.1    | world",
        "web.1    | a",
        "web.1    | b",
        "web.1    | c",
    ]


async def test_an_over_long_line_is_split_at_the_bound_with_a_marker() -> None:
    relay, sink = relay_with()
    assembler = LineAssembler(relay, "web.1", "web", asyncio.get_running_loop())
    body = b"a" * (MAX_LINE_BYTES * 2 + 10)
    for start in range(0, len(body), 4096):
        assembler.feed(body[start : start + 4096])
    assembler.feed(b"\nnext\n")
    assembler.close()
    lines = bytes(sink.data).split(b"\n")[:-1]
    assert [line.endswith(CONTINUED_MARKER) for line in lines] == [True, True, False, False]
    prefix = b"web.1    | "
    rebuilt = b"".join(line[len(prefix) :].removesuffix(CONTINUED_MARKER) for line in lines[:3])
    assert rebuilt == body
    assert lines[3] == prefix + b"next"


async def test_a_long_line_inside_one_big_chunk_is_split_too() -> None:
    relay, sink = relay_with()
    assembler = LineAssembler(relay, "web.1", "web", asyncio.get_running_loop())
    assembler.feed(b"short\n" + b"b" * (MAX_LINE_BYTES + 1) + b"\nend\n")
    lines = bytes(sink.data).split(b"\n")[:-1]
    assert len(lines) == 4
    assert lines[1].endswith(CONTINUED_MARKER)
    assert lines[2] == b"web.1    | b"


LINE_LENGTHS = [
    0,
    1,
    59,
    MAX_LINE_BYTES - 1,
    MAX_LINE_BYTES,
    MAX_LINE_BYTES + 1,
    2 * MAX_LINE_BYTES + 3,
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(LINE_LENGTHS), min_size=1, max_size=6))
async def test_only_over_long_lines_are_split_in_a_big_chunk(lengths: list[int]) -> None:
    """One chunk, as a read from a full pipe arrives: lines up to the bound pass whole, longer
    ones are cut at the bound with the marker on every piece but the last."""
    relay, sink = relay_with()
    assembler = LineAssembler(relay, "web.1", "web", asyncio.get_running_loop())
    lines = [bytes([ord("a") + i % 26]) * length for i, length in enumerate(lengths)]
    assembler.feed(b"\n".join(lines) + b"\n")
    assembler.close()
    expected = []
    for line in lines:
        while len(line) > MAX_LINE_BYTES:
            expected.append(line[:MAX_LINE_BYTES] + CONTINUED_MARKER)
            line = line[MAX_LINE_BYTES:]
        expected.append(line)
    assert bytes(sink.data).split(b"\n")[:-1] == [b"web.1    | " + line for line in expected]


async def test_a_split_never_cuts_a_utf8_character() -> None:
    relay, sink = relay_with()
    assembler = LineAssembler(relay, "web.1", "web", asyncio.get_running_loop())
    assembler.feed(("é" * MAX_LINE_BYTES).encode() + b"\n")
    for line in bytes(sink.data).split(b"\n")[:-1]:
        line.decode("utf-8")  # raises if a character was cut


async def test_invalid_utf8_passes_through_in_text_and_is_replaced_in_json() -> None:
    relay, sink = relay_with()
    LineAssembler(relay, "web.1", "web", asyncio.get_running_loop()).feed(b"\xff\xfe\x00bin\n")
    assert bytes(sink.data) == b"web.1    | \xff\xfe\x00bin\n"
    relay, sink = relay_with(OutputStyle(json=True))
    LineAssembler(relay, "web.1", "web", asyncio.get_running_loop()).feed(b"\xffok\n")
    record = json.loads(sink.data)
    assert record["process"] == "web.1"
    assert record["line"] == "\ufffdok"


async def test_a_partial_line_is_flushed_after_a_pause() -> None:
    relay, sink = relay_with()
    assembler = LineAssembler(relay, "web.1", "web", asyncio.get_running_loop())
    assembler.feed(b"Password: ")
    assert sink.data == b""
    await asyncio.wait_for(sink.written.wait(), timeout=5)
    assert bytes(sink.data) == b"web.1    | Password: \n"


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
    relay, sink = relay_with()
    loop = asyncio.get_running_loop()
    never_drained: asyncio.Future[None] = loop.create_future()
    fired = asyncio.Event()
    sink.on_pause()
    relay.after_drain(never_drained, 0.05, fired.set)
    # Observation window, not synchronisation: several guard periods while paused.
    await asyncio.sleep(0.3)
    assert not fired.is_set()
    sink.on_resume()
    await asyncio.wait_for(fired.wait(), 5)


async def test_the_drain_guard_gives_up_on_a_pipe_held_open() -> None:
    relay, _ = relay_with()
    never_drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fired = asyncio.Event()
    relay.after_drain(never_drained, 0.05, fired.set)
    await asyncio.wait_for(fired.wait(), 5)


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


async def test_a_burst_keeps_the_heap_and_ordinary_output_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read larger than a default pipe (a child flooding) turns on procrun/heap.py's
    thresholds; ordinary output leaves glibc's defaults alone. Each write lands in the pipe
    before the loop reads it, so each is one read."""
    calls: list[None] = []
    monkeypatch.setattr("procrun.output.keep_heap_for_bursts", lambda: calls.append(None))
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

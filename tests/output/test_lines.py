"""Line assembly as a unit, on a hand-set clock: chunks in, whole lines out."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from procrun.output.lines import MAX_LINE_BYTES, PARTIAL_LINE_FLUSH_SECONDS, LineAssembler
from procrun.output.relay import CONTINUED_MARKER, OutputStyle, Relay
from tests.fakeclock import FakeClock
from tests.sinks import CollectingSink


def assembler_with(style: OutputStyle | None = None) -> tuple[Relay, CollectingSink, FakeClock]:
    sink = CollectingSink()
    clock = FakeClock()
    relay = Relay(sink, style or OutputStyle(), clock=clock)
    relay.reserve(["web.1", "worker.1"])
    return relay, sink, clock


def test_lines_split_across_chunks_come_out_whole() -> None:
    relay, sink, clock = assembler_with()
    assembler = LineAssembler(relay, "web.1", "web", clock)
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


def test_every_line_of_a_chunk_gets_the_coloured_prefix() -> None:
    """Small reads and a large one (written as read, beside the carried line start) alike."""
    relay, sink, clock = assembler_with(OutputStyle(colour=True))
    assembler = LineAssembler(relay, "web.1", "web", clock)
    many = [b"line %d" % n for n in range(5000)]
    large = b"\n".join(many)[3:] + b"\nend"
    for chunk in (b"hel", b"lo\nwor", b"ld\nlin", large, b"\n"):
        assembler.feed(chunk)
    prefix = relay.prefix("web.1", "web")
    assert prefix.startswith(b"\x1b[")
    lines = [b"hello", b"world", *many, b"end"]
    assert bytes(sink.data) == b"".join(prefix + line + b"\n" for line in lines)


def test_an_over_long_line_is_split_at_the_bound_with_a_marker() -> None:
    relay, sink, clock = assembler_with()
    assembler = LineAssembler(relay, "web.1", "web", clock)
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


def test_a_long_line_inside_one_big_chunk_is_split_too() -> None:
    relay, sink, clock = assembler_with()
    assembler = LineAssembler(relay, "web.1", "web", clock)
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
def test_only_over_long_lines_are_split_in_a_big_chunk(lengths: list[int]) -> None:
    """One chunk, as a read from a full pipe arrives: lines up to the bound pass whole, longer
    ones are cut at the bound with the marker on every piece but the last."""
    relay, sink, clock = assembler_with()
    assembler = LineAssembler(relay, "web.1", "web", clock)
    lines = [bytes([ord("a") + i % 26]) * length for i, length in enumerate(lengths)]
    assembler.feed(b"\n".join(lines) + b"\n")
    assembler.close()
    assert bytes(sink.data).split(b"\n")[:-1] == cut_at_the_bound(lines)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(LINE_LENGTHS), min_size=1, max_size=6),
    st.lists(st.integers(min_value=1, max_value=3 * MAX_LINE_BYTES), max_size=8),
)
def test_lines_come_out_the_same_wherever_the_reads_end(
    lengths: list[int], reads: list[int]
) -> None:
    """Block writes end mid-line, so a line's start is carried over to the next read: that must
    change neither what comes out nor where an over-long line is cut."""
    relay, sink, clock = assembler_with()
    assembler = LineAssembler(relay, "web.1", "web", clock)
    lines = [bytes([ord("a") + i % 26]) * length for i, length in enumerate(lengths)]
    stream = b"\n".join(lines) + b"\n"
    start = 0
    for size in [*reads, len(stream)]:
        if start < len(stream):
            assembler.feed(stream[start : start + size])
        start += size
    assembler.close()
    assert bytes(sink.data).split(b"\n")[:-1] == cut_at_the_bound(lines)


def cut_at_the_bound(lines: list[bytes]) -> list[bytes]:
    """The lines as the relay writes them: over-long ones cut at the bound, with the marker on
    every piece but the last."""
    expected = []
    for line in lines:
        while len(line) > MAX_LINE_BYTES:
            expected.append(line[:MAX_LINE_BYTES] + CONTINUED_MARKER)
            line = line[MAX_LINE_BYTES:]
        expected.append(line)
    return [b"web.1    | " + line for line in expected]


def test_a_split_never_cuts_a_utf8_character() -> None:
    relay, sink, clock = assembler_with()
    assembler = LineAssembler(relay, "web.1", "web", clock)
    assembler.feed(("é" * MAX_LINE_BYTES).encode() + b"\n")
    for line in bytes(sink.data).split(b"\n")[:-1]:
        line.decode("utf-8")  # raises if a character was cut


def test_invalid_utf8_passes_through_in_text_and_is_replaced_in_json() -> None:
    relay, sink, clock = assembler_with()
    LineAssembler(relay, "web.1", "web", clock).feed(b"\xff\xfe\x00bin\n")
    assert bytes(sink.data) == b"web.1    | \xff\xfe\x00bin\n"
    relay, sink, clock = assembler_with(OutputStyle(json=True))
    LineAssembler(relay, "web.1", "web", clock).feed(b"\xffok\n")
    record = json.loads(sink.data)
    assert record["process"] == "web.1"
    assert record["line"] == "\ufffdok"


def test_a_partial_line_is_flushed_after_a_pause() -> None:
    relay, sink, clock = assembler_with()
    assembler = LineAssembler(relay, "web.1", "web", clock)
    assembler.feed(b"Password: ")
    clock.advance(PARTIAL_LINE_FLUSH_SECONDS - 0.01)
    assert sink.data == b""
    clock.advance(0.01)
    assert bytes(sink.data) == b"web.1    | Password: \n"


def test_a_partial_line_waits_while_the_child_keeps_writing() -> None:
    """The flush comes a whole quiet period after the last bytes, not after the first."""
    relay, sink, clock = assembler_with()
    assembler = LineAssembler(relay, "web.1", "web", clock)
    assembler.feed(b"progress")
    for _ in range(3):
        clock.advance(PARTIAL_LINE_FLUSH_SECONDS / 2)
        assembler.feed(b".")
    assert sink.data == b""
    clock.advance(PARTIAL_LINE_FLUSH_SECONDS)
    assert bytes(sink.data) == b"web.1    | progress...\n"


def test_a_partial_line_is_not_flushed_while_stdout_is_full() -> None:
    """The rest of the line is waiting in the pipe, not missing."""
    relay, sink, clock = assembler_with()
    assembler = LineAssembler(relay, "web.1", "web", clock)
    assembler.feed(b"half a li")
    relay.paused = True
    clock.advance(PARTIAL_LINE_FLUSH_SECONDS * 4)
    assert sink.data == b""
    relay.paused = False
    assembler.rearm()
    clock.advance(PARTIAL_LINE_FLUSH_SECONDS)
    assert bytes(sink.data) == b"web.1    | half a li\n"

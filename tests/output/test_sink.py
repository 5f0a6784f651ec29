"""procrun's stdout sinks on real pipes: parts handed over as views come out whole and in order."""

import asyncio
import os
import threading

from procrun.output.sink import BlockingSink, PipeSink
from tests.harness import DEADLINE_SECONDS


def read_all(fd: int, into: bytearray) -> None:
    while chunk := os.read(fd, 1 << 16):
        into += chunk


def test_a_blocking_sink_writes_every_part_of_a_full_pipe_in_order() -> None:
    """More than the pipe holds, so the writes block part-way until the reader catches up."""
    read_end, write_end = os.pipe()
    parts: list[bytes | memoryview] = [
        b"web.1 | " + b"a" * 100_000,
        memoryview(b"\nweb.1 | " + b"b" * 200_000)[:150_000],
    ]
    received = bytearray()
    reader = threading.Thread(target=read_all, args=(read_end, received))
    reader.start()
    try:
        BlockingSink(write_end).writev(parts)
    finally:
        os.close(write_end)
        reader.join(DEADLINE_SECONDS)
        os.close(read_end)
    assert bytes(received) == b"".join(parts)


async def test_a_pipe_sink_buffers_parts_in_order_while_the_pipe_is_full() -> None:
    """The prefixed copy of a chunk is handed over as a view: what the pipe cannot take yet is
    buffered, behind what came before, and stdout's back-pressure pauses the relay."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    sink = PipeSink(write_end)
    paused: list[bool] = []
    sink.on_pause = lambda: paused.append(True)
    await sink.open()
    blocks = [
        (b"w.1 | %d" % n, memoryview(b"-" * 100_000 + b"\n" + b"tail")[:100_001]) for n in range(8)
    ]
    for head, view in blocks:
        sink.writev((head, view))
    assert paused, "800 KB into a 64 KiB pipe must pause the relay"
    received = bytearray()
    reader = asyncio.get_running_loop().run_in_executor(None, read_all, read_end, received)
    await asyncio.wait_for(sink.aclose(), DEADLINE_SECONDS)
    await asyncio.wait_for(reader, DEADLINE_SECONDS)
    os.close(read_end)
    assert bytes(received) == b"".join(head + bytes(view) for head, view in blocks)

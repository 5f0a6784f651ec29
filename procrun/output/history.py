"""Recent output per process, for `procrun logs`, and live subscriptions for `logs -f`.

The relay hands over whole blocks of lines it has just written; they are kept as they are (no
per-line work on the hot path, not even joining a chunk to the line start carried over from the
one before) within a byte budget per process, so a chatty process cannot evict a quiet one's
history. Lines are joined and split only when someone asks.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncGenerator, Collection

HISTORY_BYTES_PER_PROCESS = 256 * 1024
# What an entry costs besides its bytes (its tuple, two ints, the bytes header, a deque slot):
# counted, so a process that writes short lines one by one cannot hold several times its budget.
ENTRY_OVERHEAD_BYTES = 160
FOLLOWER_QUEUE_BLOCKS = 1024


class _Follower:
    def __init__(self, names: Collection[str]) -> None:
        self.names = names
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(FOLLOWER_QUEUE_BLOCKS)
        self.dropped = 0


class LogHistory:
    def __init__(self, budget_bytes: int = HISTORY_BYTES_PER_PROCESS) -> None:
        self._budget = budget_bytes
        # Per process: (sequence, head, chunk, end), the lines head + chunk[:end].
        self._blocks: dict[str, deque[tuple[int, bytes, bytes, int]]] = {}
        self._sizes: dict[str, int] = {}
        self._sequence = itertools.count()
        self._followers: set[_Follower] = set()

    def record(self, name: str, block: bytes) -> None:
        """`block`: one or more complete lines of `name`, without the final newline."""
        self.record_chunk(name, b"", block, len(block))

    def record_chunk(self, name: str, head: bytes, chunk: bytes, end: int) -> None:
        """The complete lines `head + chunk[:end]` (lines.py, LineSink.emit_chunk)."""
        blocks = self._blocks.setdefault(name, deque())
        blocks.append((next(self._sequence), head, chunk, end))
        # The budget counts what is held, the chunk's unfinished tail included.
        size = self._sizes.get(name, 0) + _held(head, chunk)
        while size > self._budget and len(blocks) > 1:
            _, dropped_head, dropped, _ = blocks.popleft()
            size -= _held(dropped_head, dropped)
        self._sizes[name] = size
        if not self._followers:
            return
        block = _joined(head, chunk, end)
        for follower in self._followers:
            if not follower.names or name in follower.names:
                try:
                    follower.queue.put_nowait((name, block))
                except asyncio.QueueFull:
                    follower.dropped += block.count(b"\n") + 1

    def recent(self, names: Collection[str], count: int) -> list[tuple[str, str]]:
        """The last `count` lines of `names` (all processes when empty), oldest first."""
        if count <= 0:
            return []
        chosen = [n for n in self._blocks if not names or n in names]
        tagged: list[tuple[int, str, bytes]] = []
        for name in chosen:
            lines = 0
            for seq, head, chunk, end in reversed(self._blocks[name]):
                block = _joined(head, chunk, end)
                tagged.append((seq, name, block))
                lines += block.count(b"\n") + 1
                if lines >= count:
                    break
        tagged.sort()
        result = [
            (name, line.decode("utf-8", "replace"))
            for _, name, block in tagged
            for line in block.split(b"\n")
        ]
        return result[-count:]

    async def follow(self, names: Collection[str]) -> AsyncGenerator[tuple[str, str], None]:
        """Lines as they are relayed, until the consumer stops iterating."""
        follower = _Follower(frozenset(names))
        self._followers.add(follower)
        try:
            while True:
                name, block = await follower.queue.get()
                for line in block.split(b"\n"):
                    yield name, line.decode("utf-8", "replace")
                if follower.dropped and follower.queue.empty():  # the gap is here
                    yield "procrun", f"[{follower.dropped} lines dropped: the reader was too slow]"
                    follower.dropped = 0
        finally:
            self._followers.discard(follower)


def _held(head: bytes, chunk: bytes) -> int:
    return ENTRY_OVERHEAD_BYTES + len(head) + len(chunk)


def _joined(head: bytes, chunk: bytes, end: int) -> bytes:
    return head + chunk[:end] if head or end < len(chunk) else chunk

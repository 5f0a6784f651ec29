"""An in-memory stdout for in-process supervisor tests."""

from __future__ import annotations

import asyncio
import re

from procrun.output.sink import Sink


class CollectingSink(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.written = asyncio.Event()

    def write(self, data: bytes | memoryview) -> None:
        self.data += data
        self.written.set()

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    async def wait_for(self, pattern: str, within: float = 20.0) -> re.Match[str]:
        """Wait until the output so far matches `pattern`; the timeout is a hang guard."""
        regex = re.compile(pattern)
        async with asyncio.timeout(within):
            while not (match := regex.search(self.text())):
                self.written.clear()
                await self.written.wait()
        return match

"""Time as an injected dependency: the event loop's clock in production, a hand-set one in tests.

Every policy timer (grace deadlines, restart backoff, min uptime) goes through a Clock, so a 600 s
Celery grace is tested in milliseconds with real children.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer: ...


class LoopClock:
    """The running event loop's monotonic clock."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def now(self) -> float:
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return self._loop.call_at(when, callback)


async def wait_until(clock: Clock, future: asyncio.Future[Any], deadline: float) -> bool:
    """Wait for `future` until `deadline` on `clock`; True if it completed in time."""
    if future.done() or deadline <= clock.now():
        return future.done()
    expired: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def expire() -> None:
        if not expired.done():
            expired.set_result(None)

    timer = clock.call_at(deadline, expire)
    try:
        await asyncio.wait((future, expired), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        expired.cancel()
    return future.done()

"""Polling a probe until it passes: attempts that back off from 10 ms up to the process's
`interval`, so a process ready in 30 ms is seen ready in about 30 ms and one that takes a minute
is not hammered. The back-off alone would make a late start wait up to an interval more; but a
server says something when it is up ("Listening at ...", "Uvicorn running on ..."), so the
caller nudges the poll whenever the process writes output, and the next attempt goes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from procrun.health.probes import Children, Env, OutputCallback, ProbeResult, check_once
from procrun.settings import Probe

FIRST_INTERVAL_SECONDS = 0.01


def next_interval(previous: float | None, max_interval: float) -> float:
    """The wait before the next attempt: 10 ms first, then doubling, at most `max_interval`."""
    interval = FIRST_INTERVAL_SECONDS if previous is None else previous * 2
    return min(interval, max_interval)


async def poll_until_ok(
    probe: Probe,
    env: Env,
    cwd: Path,
    *,
    max_interval: float,
    children: Children,
    on_output: OutputCallback | None = None,
    on_failure: Callable[[ProbeResult], None] | None = None,
    nudge: asyncio.Event | None = None,
) -> ProbeResult:
    """Attempt until one passes, and return it; runs until then or until cancelled. `nudge`,
    when set, cuts the wait short: the caller sets it when the process writes output."""
    interval: float | None = None
    while True:
        result = await check_once(probe, env, cwd, children=children, on_output=on_output)
        if result.ok:
            return result
        if on_failure is not None:
            on_failure(result)
        interval = next_interval(interval, max_interval)
        if nudge is None:
            await asyncio.sleep(interval)  # a pause between real attempts
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(nudge.wait(), interval)
        nudge.clear()

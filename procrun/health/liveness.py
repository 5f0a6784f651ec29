"""Liveness: is a running process still doing its job? A polled probe (exec, http, tcp) runs every
`every`; `failures` failures in a row post a liveness ProbeFailed with the last result, and the
supervisor restarts the process through its own stop sequence, as a failure. A watchdog probe
expects an sd_notify WATCHDOG=1 at least once per period instead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping

import structlog

from procrun.events import Event, ProbeFailed
from procrun.health.probes import Children, check_once
from procrun.process import ManagedProcess
from procrun.settings import LivenessProbe, ProbeKind

log = structlog.get_logger()


async def watch_liveness(
    process: ManagedProcess,
    alive: LivenessProbe,
    post: Callable[[Event], None],
    pings: MutableMapping[str, Callable[[], None]],
    children: Children,
) -> None:
    """Until cancelled (the run ends) or the probe has failed: then ProbeFailed is posted.
    `children` reaps an exec probe's shell."""
    if alive.probe.kind is ProbeKind.WATCHDOG:
        reason = await _watch_pings(process.name, alive.probe.timeout_seconds, pings)
    else:
        reason = await _poll(process, alive, children)
    post(ProbeFailed(process.name, reason, liveness=True))


async def _watch_pings(
    name: str, period: float, pings: MutableMapping[str, Callable[[], None]]
) -> str:
    pinged = asyncio.Event()
    pings[name] = pinged.set
    try:
        while True:
            try:
                await asyncio.wait_for(pinged.wait(), period)
            except TimeoutError:
                return f"no WATCHDOG=1 for {period:g} s"
            pinged.clear()
    finally:
        if pings.get(name) == pinged.set:
            del pings[name]


async def _poll(process: ManagedProcess, alive: LivenessProbe, children: Children) -> str:
    probe = alive.probe
    failures = 0
    while True:
        await asyncio.sleep(alive.every_seconds)  # the probe's own rhythm, its only wake-up
        result = await check_once(probe, process.spec.env, process.spec.cwd, children=children)
        if result.ok:
            failures = 0
            continue
        failures += 1
        log.info(
            "liveness.probe_failed", process=process.name, detail=result.detail, count=failures
        )
        if failures >= alive.failures:
            return f"{probe.describe()} failed {failures} times in a row: {result.detail}"

"""The memory watchdog: restarts a process whose whole tree stays above its `max_memory`.

Only processes with a limit are sampled, on one timer that exists only when some process has a
limit: without limits procrun never wakes for this, and never imports psutil.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from procrun.clock import Clock, Timer
from procrun.lifecycle import ProcessState
from procrun.process import ManagedProcess
from procrun.procinfo import TreeSampler, TreeUsage
from procrun.settings import ProcessSettings

log = structlog.get_logger()

MAX_SAMPLE_INTERVAL_SECONDS = 5.0
MIN_SAMPLE_INTERVAL_SECONDS = 0.25


def sample_interval(settings: Sequence[ProcessSettings]) -> float | None:
    """A third of the shortest `max_memory_for`, within bounds; None when nothing has a limit."""
    windows = [s.max_memory_for_seconds for s in settings if s.max_memory_bytes is not None]
    if not windows:
        return None
    return min(max(min(windows) / 3, MIN_SAMPLE_INTERVAL_SECONDS), MAX_SAMPLE_INTERVAL_SECONDS)


class MemoryWatchdog:
    def __init__(
        self,
        processes: Sequence[ManagedProcess],
        clock: Clock,
        on_exceeded: Callable[[ManagedProcess, str], None],
    ) -> None:
        # The supervisor's own list, read at each sample: instances scaled up are watched too.
        self._processes = processes
        self._interval = sample_interval([p.spec.settings for p in processes])
        self._clock = clock
        self._on_exceeded = on_exceeded
        self._sampler = TreeSampler()  # imports psutil only on a first sample
        self._over_since: dict[str, tuple[int, float]] = {}  # name -> (pid, since)
        self._timer: Timer | None = None

    def start(self) -> None:
        if self._interval is not None:
            self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        assert self._interval is not None
        self._timer = self._clock.call_at(self._clock.now() + self._interval, self._check)

    def _check(self) -> None:
        self._schedule()
        now = self._clock.now()
        watched: list[tuple[ManagedProcess, int, int]] = []  # (process, pid, limit)
        for process in self._processes:
            limit = process.spec.settings.max_memory_bytes
            pid = process.pid
            if limit is None or pid is None or process.state is not ProcessState.RUNNING:
                self._over_since.pop(process.name, None)
            else:
                watched.append((process, pid, limit))
        # One read of the process table for all of them, however many there are.
        usages = self._sampler.sample_many([pid for _, pid, _ in watched])
        for process, pid, limit in watched:
            self._judge(process, pid, limit, usages.get(pid), now)

    def _judge(
        self, process: ManagedProcess, pid: int, limit: int, usage: TreeUsage | None, now: float
    ) -> None:
        log.debug(
            "watchdog.sampled",
            process=process.name,
            rss_bytes=usage.rss_bytes if usage else None,
            limit_bytes=limit,
        )
        if usage is None or usage.rss_bytes <= limit:
            self._over_since.pop(process.name, None)
            return
        since_pid, since = self._over_since.setdefault(process.name, (pid, now))
        if since_pid != pid:  # a new run of the process: start counting again
            self._over_since[process.name] = (pid, now)
            return
        window = process.spec.settings.max_memory_for_seconds
        if now - since >= window:
            self._over_since.pop(process.name)
            reason = (
                f"memory: {_mb(usage.rss_bytes)} in {usage.processes} processes above "
                f"max_memory {_mb(limit)} for {now - since:.1f} s"
            )
            log.warning(
                "watchdog.restarting",
                process=process.name,
                rss_bytes=usage.rss_bytes,
                limit_bytes=limit,
                over_seconds=round(now - since, 1),
            )
            self._on_exceeded(process, reason)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"

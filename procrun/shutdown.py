"""A shutdown under way: why, the process that caused it, its deadline, and how often it has been
forced. It starts every process's stop against the deadline (lifecycle.cap_stop binds the stops
already under way too) and forces them on a second Ctrl-C (lifecycle.force_stop)."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from dataclasses import dataclass

import structlog

from procrun.lifecycle import describe_forced, effective_grace
from procrun.process import ManagedProcess
from procrun.stopping import describe_pending

log = structlog.get_logger()


@dataclass
class Shutdown:
    reason: str
    cause: ManagedProcess | None  # the process whose exit made procrun stop, if any
    deadline: float | None = None  # on the clock: every stop's SIGKILL comes by then
    forces: int = 0  # second Ctrl-Cs (or `shutdown --force`) so far

    def stop(
        self, processes: Sequence[ManagedProcess], timeout: float | None
    ) -> list[Coroutine[None, None, None]]:
        """Begin each process's stop, its grace cut to the timeout; the stop sequences to run."""
        sequences = []
        for process in processes:
            stopping = process.begin_stop(
                effective_grace(process.spec.settings, timeout), f"shutdown: {self.reason}"
            )
            if stopping is not None:
                sequences.append(stopping)
            if self.deadline is not None:
                process.cap_stop(self.deadline)  # a stop already under way (restart, stop, ...)
        return sequences

    def waiting_for(self, processes: Sequence[ManagedProcess], now: float) -> str | None:
        """`worker.1 (SIGQUIT in 280 s, SIGKILL in 290 s)`: what the shutdown still waits for."""
        told = [
            f"{process.name} ({describe_pending(plan, now)})"
            for process in processes
            if (plan := process.stop) is not None
        ]
        return "; ".join(told) or None

    def force(self, reason: str, processes: Sequence[ManagedProcess], kill_after: float) -> None:
        """The first force moves every stop to its last signal now and its SIGKILL `kill_after`
        later; any later one SIGKILLs everything at once. It says what it does."""
        self.forces += 1
        if self.forces == 1:
            steps = [
                describe_forced(process.name, plan)
                for process in processes
                if (plan := process.force_stop(kill_after)) is not None
            ]
            told = "; ".join(steps) or "nothing left to stop"
            log.warning("shutdown.forced", reason=reason, plan=f"{told}; Ctrl-C again to kill now")
            return
        log.warning("shutdown.killing", reason=reason)
        for process in processes:
            process.kill_now()

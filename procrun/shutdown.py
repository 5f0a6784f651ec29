"""A shutdown under way: why, the process that caused it, its deadline, and how often it has been
forced. It begins every process's stop against the deadline (lifecycle.cap_stop binds the stops
already under way too), dependencies after their dependents (ordering.py), says what it still
waits for, and forces the stops on a second Ctrl-C (lifecycle.force_stop)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field

import structlog

from procrun.clock import Clock
from procrun.lifecycle import describe_forced, effective_grace
from procrun.ordering import DependencyOrder, latest_stop
from procrun.process import ManagedProcess
from procrun.stopping import describe_pending

log = structlog.get_logger()

FIRST_WAITING_SECONDS = 1.0  # a quick stop says nothing
WAITING_EVERY_SECONDS = 10.0

RunSoon = Callable[[Coroutine[None, None, None]], None]


@dataclass
class Shutdown:
    reason: str
    cause: ManagedProcess | None  # the process whose exit made procrun stop, if any
    deadline: float | None = None  # on the clock: every stop's SIGKILL comes by then
    forces: int = 0  # second Ctrl-Cs (or `shutdown --force`) so far
    held: list[ManagedProcess] = field(default_factory=list)
    """Processes whose stop waits until the processes that depend on them have settled."""

    def begin(
        self,
        processes: Sequence[ManagedProcess],
        timeout: float | None,
        *,
        order: DependencyOrder,
        clock: Clock,
        run_soon: RunSoon,
    ) -> None:
        """Stop every process that no other depends on now; hold the rest back until their
        dependents have settled, or until the deadline leaves them just their own grace."""
        self.held = [p for p in processes if not order.may_stop(p)]
        for stopping in self.stop([p for p in processes if p not in self.held], timeout):
            run_soon(stopping)
        for process in self.held:
            at = latest_stop(process.spec.settings.grace_seconds, clock.now(), self.deadline)
            if at is not None:
                clock.call_at(at, functools.partial(self.release, process, clock, run_soon))

    def advance(self, order: DependencyOrder, clock: Clock, run_soon: RunSoon) -> None:
        """After each event: begin the stops whose dependents have all settled."""
        for process in [p for p in self.held if order.may_stop(p)]:
            self.release(process, clock, run_soon)

    def release_all(self, clock: Clock, run_soon: RunSoon) -> None:
        """A forced shutdown waits for no dependents: every held stop begins now."""
        for process in list(self.held):
            self.release(process, clock, run_soon)

    def release(self, process: ManagedProcess, clock: Clock, run_soon: RunSoon) -> None:
        if process not in self.held:
            return
        self.held.remove(process)
        left = None if self.deadline is None else max(self.deadline - clock.now(), 0.0)
        for stopping in self.stop([process], left):
            run_soon(stopping)

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
        told += [f"{process.name} (stops after its dependents)" for process in self.held]
        return "; ".join(told) or None

    def tell_waiting(
        self,
        processes: Sequence[ManagedProcess],
        clock: Clock,
        finished: Callable[[], bool],
        after: float = WAITING_EVERY_SECONDS,
    ) -> None:
        """While the shutdown waits on long graces, say for what and until when, every so often
        (first `after` from now)."""

        def tell() -> None:
            if finished():
                return
            if waiting := self.waiting_for(processes, clock.now()):
                log.info("shutdown.waiting", waiting_for=waiting, hint="Ctrl-C again to force")
            self.tell_waiting(processes, clock, finished)

        clock.call_at(clock.now() + after, tell)

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

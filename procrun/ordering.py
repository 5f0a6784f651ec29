"""depends_on at run time: which processes may start now, and which must wait before they stop.

A dependency names a process type (a Procfile entry) and a condition; it holds when every instance
of that type in this formation meets the condition. A type left out of this formation (`procrun
start web`, one type per container) is not waited for: there the platform orders the services.
Stops run in reverse: a process begins its stop once every process that depends on it has
settled, or when the shutdown's deadline leaves it no more time to wait (`latest_stop`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from procrun.lifecycle import FINISHED_STATES, SETTLED_STATES, ProcessState
from procrun.process import ManagedProcess
from procrun.settings import Condition


def meets(process: ManagedProcess, condition: Condition) -> bool:
    match condition:
        case Condition.STARTED:
            return (
                process.state is not ProcessState.STOPPED or process.record.started_at is not None
            )
        case Condition.READY:
            return process.state is ProcessState.RUNNING or completed(process)
        case Condition.COMPLETED:
            return completed(process)


def completed(process: ManagedProcess) -> bool:
    return process.state is ProcessState.EXITED and process.record.last_returncode == 0


class DependencyOrder:
    def __init__(self, processes: Callable[[], Sequence[ManagedProcess]]) -> None:
        self._processes = processes

    def _instances(self, kind: str) -> list[ManagedProcess]:
        return [p for p in self._processes() if p.spec.kind == kind]

    def unmet(self, process: ManagedProcess) -> list[str]:
        """`redis ready` for each of its conditions that does not hold yet."""
        return [
            f"{kind} {condition}"
            for kind, condition in process.spec.settings.depends_on.items()
            if not all(meets(p, condition) for p in self._instances(kind))
        ]

    def impossible(self, process: ManagedProcess) -> str | None:
        """A condition that can no longer hold: an instance settled on its own without meeting
        it (it gave up, or a one-shot failed). `redis.1 FATAL`, or None."""
        for kind, condition in process.spec.settings.depends_on.items():
            for dependency in self._instances(kind):
                if dependency.state in FINISHED_STATES and not meets(dependency, condition):
                    return f"{dependency.name} {dependency.state}"
        return None

    def dependents(self, process: ManagedProcess) -> list[ManagedProcess]:
        kind = process.spec.kind
        return [
            p for p in self._processes() if kind in p.spec.settings.depends_on and p is not process
        ]

    def restarted_with(
        self, process: ManagedProcess, waiting: Sequence[ManagedProcess]
    ) -> list[ManagedProcess]:
        """The dependents that restart when `process` does (`restart_with`), unless waiting."""
        return [
            p for p in self.dependents(process) if p.spec.settings.restart_with and p not in waiting
        ]

    def may_stop(self, process: ManagedProcess) -> bool:
        """Every process that depends on it has settled."""
        return all(p.state in SETTLED_STATES for p in self.dependents(process))


def latest_stop(grace: float, started: float, deadline: float | None) -> float | None:
    """When a stop held back for its dependents begins at the latest: early enough to keep its
    own grace before the deadline, but never in the first half of the shutdown's window, which
    belongs to the dependents. None without a deadline: it waits for its dependents however
    long their graces are."""
    if deadline is None:
        return None
    window = deadline - started
    return deadline - min(grace, window / 2)


class StartQueue:
    """The processes not started yet because their dependencies do not hold, in Procfile
    order. `start_ready` starts those that may start; a start can satisfy a later process's
    `started` condition, so it goes round until nothing more can start."""

    def __init__(self, order: DependencyOrder, *, interrupted: Callable[[], bool]) -> None:
        self._order = order
        self._interrupted = interrupted  # handles pending events; True once a shutdown began
        self.waiting: list[ManagedProcess] = []

    def startable(self) -> bool:
        return any(not self._order.unmet(p) for p in self.waiting)

    def blocked(self, process: ManagedProcess) -> bool:
        """It waits for a condition that can no longer hold."""
        return process in self.waiting and self._order.impossible(process) is not None

    def waiting_for(self, process: ManagedProcess) -> str | None:
        """`redis ready`: what a process not yet started waits for."""
        if process not in self.waiting:
            return None
        return ", ".join(self._order.unmet(process)) or None

    async def start_ready(self) -> None:
        progress = True
        while progress and self.waiting:
            progress = False
            for process in list(self.waiting):
                if self._interrupted():
                    return
                if process in self.waiting and not self._order.unmet(process):
                    self.waiting.remove(process)
                    await process.spawn()
                    progress = True

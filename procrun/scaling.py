"""Scaling a process type while procrun runs (`procrun scale worker=3`).

Scaling up supervises the missing instances and starts them. Their specs come from the caller,
built by the project's own recipe exactly as `start` builds them, so worker.3 has the PS, PORT,
environment, settings and probes that `-c worker=3` would have given it. Scaling down stops the
highest-numbered instances, each through its own stop sequence and full grace (a Celery worker:
TERM, then QUIT before its deadline), and once one has stopped it is supervised no more: `status`
shows it STOPPING until then, and not at all afterwards. Nothing is written anywhere: the counts
last until procrun stops.

Letting an instance go is done here rather than by a Supervisor method, which would take
supervisor.py past its size: the instance leaves `Supervisor.processes` (the list that status,
the memory watchdog and the file watcher read) and the start queue. The supervisor's name map
keeps it, settled, so that an event still queued about it finds a settled process and does
nothing; a scale-up that brings the name back replaces it there (Supervisor.add_processes). The
output relay keeps its prefix width, so the columns of the other processes do not shift.

One scale of a type at a time: while a scale-down waits out a grace, another scale of that type
is refused, rather than kept waiting or left to number instances around the ones still stopping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import structlog

from procrun.errors import ProcrunError
from procrun.lifecycle import SETTLED_STATES, ProcessState
from procrun.process import ManagedProcess
from procrun.settings import ProcessSpec
from procrun.supervisor import Supervisor

log = structlog.get_logger()


@dataclass(frozen=True)
class Scaled:
    """What a scale did to one type."""

    kind: str
    before: int
    after: int
    started: tuple[str, ...]
    stopped: tuple[str, ...]
    """Stopped and supervised no more, highest-numbered first."""


def plan_scale(have: Collection[int], count: int) -> tuple[list[int], list[int]]:
    """From the instance numbers `have` to 1..`count`: the numbers to add, lowest first, and
    those to stop, highest first."""
    add = [index for index in range(1, count + 1) if index not in have]
    retire = sorted((index for index in have if index > count), reverse=True)
    return add, retire


@dataclass(frozen=True)
class _Plan:
    have: list[ManagedProcess]
    add: list[ProcessSpec]
    retire: list[ManagedProcess]


class Scaler:
    """Scales the types of one supervisor."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self._busy: dict[str, str] = {}  # type -> what a scale under way does to it

    def instances(self, kind: str) -> list[ManagedProcess]:
        """The supervised instances of `kind`, in number order."""
        chosen = [p for p in self._supervisor.processes if p.spec.kind == kind]
        return sorted(chosen, key=lambda p: p.spec.index)

    async def scale(self, wanted: Mapping[str, Sequence[ProcessSpec]]) -> list[Scaled]:
        """Each type of `wanted` to as many instances as it has specs there (all of them, numbered
        from 1, as `start` builds them). Returns once the instances stopped have stopped and
        left supervision; the new ones are STARTING by then."""
        self._check(wanted)
        plans: dict[str, _Plan] = {}
        for kind, specs in wanted.items():
            have = self.instances(kind)
            add, retire = plan_scale({p.spec.index for p in have}, len(specs))
            by_index = {p.spec.index: p for p in have}
            plans[kind] = _Plan(
                have, [s for s in specs if s.index in add], [by_index[i] for i in retire]
            )
        # Everything up to the first await is one step of the loop: no other request sees half.
        added = self._supervisor.add_processes([s for plan in plans.values() for s in plan.add])
        retiring = [p for plan in plans.values() for p in plan.retire]
        changing = [kind for kind, plan in plans.items() if plan.add or plan.retire]
        for kind in changing:
            self._busy[kind] = self._announce(kind, plans[kind])
        try:
            results = await asyncio.gather(
                *(self._supervisor.start_process(p, reason="scaled up") for p in added),
                *(self._retire(p) for p in retiring),
            )
        finally:
            for kind in changing:
                del self._busy[kind]
        starts, stops = results[: len(added)], results[len(added) :]
        if not_started := [p.name for p, yes in zip(added, starts, strict=True) if not yes]:
            raise ProcrunError(f"procrun is shutting down: {', '.join(not_started)} not started")
        stopped = {p.name for p, yes in zip(retiring, stops, strict=True) if yes}
        return [
            Scaled(
                kind,
                before=len(plan.have),
                after=len(self.instances(kind)),
                started=tuple(spec.name for spec in plan.add),
                stopped=tuple(p.name for p in plan.retire if p.name in stopped),
            )
            for kind, plan in plans.items()
        ]

    def _check(self, wanted: Mapping[str, Sequence[ProcessSpec]]) -> None:
        supervisor = self._supervisor
        if supervisor.shutting_down:
            raise ProcrunError("procrun is shutting down")
        if supervisor.release is not None and supervisor.release.state is not ProcessState.EXITED:
            raise ProcrunError("procrun is still running the release: scale afterwards")
        for kind in wanted:
            if kind in self._busy:
                raise ProcrunError(
                    f"{kind} is still being scaled ({self._busy[kind]}): try again once that is "
                    "done"
                )

    def _announce(self, kind: str, plan: _Plan) -> str:
        """Log the change; what is under way, for a refusal of another scale meanwhile."""
        after = len(plan.have) + len(plan.add) - len(plan.retire)
        starting = ", ".join(spec.name for spec in plan.add)
        stopping = ", ".join(p.name for p in plan.retire)
        fields = {"starting": starting} if starting else {"stopping": stopping}
        log.info("formation.scaled", type=kind, before=len(plan.have), after=after, **fields)
        return f"starting {starting}" if starting else f"stopping {stopping}"

    async def _retire(self, process: ManagedProcess) -> bool:
        """Stop it with its own sequence and grace, then let it go; False if it was started
        again meanwhile (`procrun start worker.3`): it then stays."""
        supervisor = self._supervisor
        await supervisor.stop_process(process, "scaled down")
        if process.state not in SETTLED_STATES or process not in supervisor.processes:
            return False
        supervisor.processes.remove(process)
        if process in supervisor.starts.waiting:  # a stopped one that waited for dependencies
            supervisor.starts.waiting.remove(process)
        log.info("process.removed", process=process.name, reason="scaled down")
        return True

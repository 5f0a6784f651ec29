"""What the control socket may ask of a running supervisor (ControlTarget, a fixed set of
operations) and the supervisor's side of it (SupervisorTarget).

The server speaks the wire protocol and calls these; nothing is looked up by a name that came off
the wire (supervisord's CVE-2017-11610 came from doing that).

Every operation names processes by instance (`worker.1`) or by type (`worker`: all instances), and
acts through the supervisor's own methods, so a manual stop uses the process's own stop sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import structlog

from procrun import __version__
from procrun.control.protocol import ProcessRow, StatusResult, TypeScaled
from procrun.errors import ProcrunError, UsageError
from procrun.lifecycle import ALIVE_STATES, FINISHED_STATES, ProcessState
from procrun.outcomes import describe_returncode, exit_status
from procrun.output.history import LogHistory
from procrun.process import ManagedProcess
from procrun.procinfo import TreeSampler, TreeUsage
from procrun.project.limits import needs_of
from procrun.project.machinelimits import apply_fd_limit
from procrun.scaling import Scaler
from procrun.settings import ProcessSpec
from procrun.stopping import describe_pending
from procrun.supervisor import Supervisor

log = structlog.get_logger()


class ControlTarget(Protocol):
    async def status(self, names: Sequence[str], wait: float | None = None) -> StatusResult:
        """The supervisor's row and one row per process, JSON-ready; with `wait`, once every
        process chosen is ready or `wait` seconds have passed. Raises UsageError for an unknown
        name."""
        ...

    async def start(self, names: Sequence[str]) -> tuple[list[str], list[str]]:
        """Start stopped processes (a Procfile type not started yet included): the instance
        names started, and those already running."""
        ...

    async def stop(self, names: Sequence[str]) -> list[str]:
        """Stop with each process's own stop sequence; returns once they have stopped."""
        ...

    async def restart(self, names: Sequence[str]) -> list[str]:
        """Graceful stop, then start again."""
        ...

    def send_signal(self, names: Sequence[str], sig: signal.Signals, group: bool) -> list[str]:
        """Deliver `sig` to each main pid (or each process group); 'web.1: delivered' lines."""
        ...

    def recent_lines(self, names: Sequence[str], count: int) -> list[tuple[str, str]]:
        """Up to `count` most recent (instance name, line) pairs, oldest first."""
        ...

    def follow(self, names: Sequence[str]) -> AsyncIterator[tuple[str, str]]:
        """New (instance name, line) pairs as they are relayed, until the client goes away."""
        ...

    def request_shutdown(self, reason: str, force: bool = False) -> None:
        """Begin a shutdown; `force` also forces it, as a second Ctrl-C would."""
        ...

    async def scale(self, counts: Mapping[str, int]) -> list[TypeScaled]:
        """Each process type to that many instances, until procrun stops (procrun/scaling.py);
        returns once the instances stopped are gone. UsageError for an unknown type."""
        ...


class SpecsFor(Protocol):
    def __call__(self, kind: str, count: int | None = None) -> Sequence[ProcessSpec]:
        """The instances of Procfile type `kind` as `start` builds them (Project.specs_for)."""
        ...


class SupervisorTarget:
    def __init__(
        self,
        supervisor: Supervisor,
        history: LogHistory,
        *,
        project_dir: Path,
        more_of: SpecsFor | None = None,
        sampler: TreeSampler | None = None,
    ) -> None:
        """`more_of(kind)`: the instances of a Procfile type that `procrun start NAMES` left out,
        so that it can be started later; `more_of(kind, count)`: `count` of them, for a scale."""
        self.project_dir = project_dir
        self._more_of = more_of
        self._supervisor = supervisor
        self._scaler = Scaler(supervisor)
        self._history = history
        self._sampler = sampler or TreeSampler()
        self._started = time.time()

    # --- naming ----------------------------------------------------------------------------------

    def _everyone(self) -> list[ManagedProcess]:
        """The release, then the processes, each type's instances together and in number order
        (instances scaled up are supervised after the others)."""
        release = [self._supervisor.release] if self._supervisor.release else []
        processes = self._supervisor.processes
        first: dict[str, int] = {}
        for position, process in enumerate(processes):
            first.setdefault(process.spec.kind, position)
        ordered = sorted(processes, key=lambda p: (first[p.spec.kind], p.spec.index))
        return [*release, *ordered]

    def _select(self, names: Sequence[str]) -> list[ManagedProcess]:
        everyone = self._everyone()
        if not names:
            return everyone
        chosen: list[ManagedProcess] = []
        for name in names:
            matches = [p for p in everyone if name in (p.name, p.spec.kind)]
            if not matches:
                valid = sorted({p.spec.kind for p in everyone} | {p.name for p in everyone})
                raise UsageError(f'unknown process "{name}"; known: {", ".join(valid)}')
            chosen += [p for p in matches if p not in chosen]
        return chosen

    def _require_running(self) -> None:
        if self._supervisor.shutting_down:
            raise ProcrunError("procrun is shutting down")

    # --- status ----------------------------------------------------------------------------------

    async def status(self, names: Sequence[str], wait: float | None = None) -> StatusResult:
        chosen = self._select(names)
        if wait:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await asyncio.gather(*(self._settled_or_ready(p) for p in chosen))
        # Reading /proc for every tree takes a while with many processes: off the loop, which goes
        # on relaying output meanwhile. Rows are built afterwards from the state as it is then; a
        # process restarted meanwhile has a new pid, and so no usage rather than its predecessor's.
        pids = [p.pid for p in chosen if p.pid is not None]
        usage = await asyncio.to_thread(self._sampler.sample_many, pids)
        supervisor = self._supervisor
        return {
            "supervisor": {
                "pid": os.getpid(),
                "project_dir": os.fspath(self.project_dir),
                "version": __version__,
                "uptime_seconds": round(time.time() - self._started, 1),
                "shutdown_timeout_seconds": supervisor.options.shutdown_timeout_seconds,
                "shutting_down": supervisor.shutting_down,
            },
            "processes": [self._row(p, usage.get(p.pid) if p.pid else None) for p in chosen],
        }

    async def _settled_or_ready(self, process: ManagedProcess) -> None:
        """Until it is RUNNING (ready), or has ended (a one-shot's success is its readiness; a
        give-up will not become ready), or a shutdown has begun."""
        if not self._supervisor.shutting_down:
            await process.wait_for_state(ProcessState.RUNNING, *FINISHED_STATES)

    def _row(self, process: ManagedProcess, usage: TreeUsage | None) -> ProcessRow:
        record = process.record
        returncode = record.last_returncode
        started = record.started_at
        alive = process.state in ALIVE_STATES
        return {
            "name": process.name,
            "state": str(process.state),
            "pid": process.pid,
            "uptime_seconds": (
                round(self._supervisor.clock.now() - started, 1) if alive and started else None
            ),
            "restarts": record.restarts,
            "last_exit": describe_returncode(returncode) if returncode is not None else None,
            "last_exit_status": exit_status(returncode) if returncode is not None else None,
            "reason": self._reason(process),
            "oneshot": process.spec.settings.oneshot,
            "ready": process.state is ProcessState.RUNNING,
            "waiting": self._waiting(process),
            "status_text": record.status_text,
            "rss_bytes": usage.rss_bytes if usage else None,
            "cpu_percent": usage.cpu_percent if usage else None,
            "tree_processes": usage.processes if usage else None,
        }

    def _waiting(self, process: ManagedProcess) -> str | None:
        """`tcp 127.0.0.1:5000, 3.2 s` while its probe has not passed; `redis ready` while it
        has not started because of its dependencies."""
        probe = process.spec.settings.ready
        started = process.record.started_at
        if process.state is ProcessState.STARTING and probe is not None and started is not None:
            elapsed = self._supervisor.clock.now() - started
            return f"{probe.describe(process.spec.env)}, {elapsed:.1f} s"
        return self._supervisor.starts.waiting_for(process)

    def _reason(self, process: ManagedProcess) -> str | None:
        """Why it is in its state; for a stop under way, also what comes next and when."""
        plan = process.stop
        if plan is None:
            return process.record.reason
        pending = describe_pending(plan, self._supervisor.clock.now())
        return f"{process.record.reason}; {pending}" if process.record.reason else pending

    # --- acting ----------------------------------------------------------------------------------

    async def start(self, names: Sequence[str]) -> tuple[list[str], list[str]]:
        self._require_running()
        known = {p.spec.kind for p in self._everyone()} | {p.name for p in self._everyone()}
        for name in names:
            if name not in known and self._more_of is not None:
                # UsageError for a name the Procfile does not define either, saying what it does.
                self._supervisor.add_processes(self._more_of(name))
        chosen = self._select(names)
        started = await asyncio.gather(*(self._supervisor.start_process(p) for p in chosen))
        return (
            [p.name for p, yes in zip(chosen, started, strict=True) if yes],
            [p.name for p, yes in zip(chosen, started, strict=True) if not yes],
        )

    async def stop(self, names: Sequence[str]) -> list[str]:
        self._require_running()
        chosen = self._select(names)
        await asyncio.gather(
            *(self._supervisor.stop_process(p, "stopped on request") for p in chosen)
        )
        return [p.name for p in chosen]

    async def restart(self, names: Sequence[str]) -> list[str]:
        self._require_running()
        chosen = self._select(names)
        await asyncio.gather(
            *(self._supervisor.restart_process(p, "restart requested") for p in chosen)
        )
        if self._supervisor.shutting_down:
            stopped = ", ".join(p.name for p in chosen)
            raise ProcrunError(f"procrun is shutting down: {stopped} stopped, not started again")
        return [p.name for p in chosen]

    async def scale(self, counts: Mapping[str, int]) -> list[TypeScaled]:
        self._require_running()
        if self._more_of is None:
            raise ProcrunError("this supervisor has no project to build instances from")
        # Every type is checked (UsageError, with a did-you-mean) before anything is done.
        wanted = {kind: self._more_of(kind, count) for kind, count in counts.items()}
        # So are the open files the formation will hold: refused in one line, not a spawn
        # failure per instance (issue 18).
        after = [p.spec for p in self._supervisor.processes if p.spec.kind not in wanted]
        after += [spec for specs in wanted.values() for spec in specs]
        try:
            raised = apply_fd_limit(needs_of(None, after), fewer="scale to fewer")
        except ProcrunError as error:
            raise ProcrunError(f"cannot scale: {error}") from None
        for r in raised:
            log.info("limit.raised", limit=r.limit, was=r.was, now=r.now, needed=r.needed)
        return [
            {
                "type": change.kind,
                "before": change.before,
                "after": change.after,
                "started": list(change.started),
                "stopped": list(change.stopped),
            }
            for change in await self._scaler.scale(wanted)
        ]

    def send_signal(self, names: Sequence[str], sig: signal.Signals, group: bool) -> list[str]:
        results = []
        for process in self._select(names):
            outcome = process.send(sig, group=group)
            results.append(f"{process.name}: {outcome.value}")
        return results

    # --- logs ------------------------------------------------------------------------------------

    def recent_lines(self, names: Sequence[str], count: int) -> list[tuple[str, str]]:
        return self._history.recent(self._instance_names(names), count)

    def follow(self, names: Sequence[str]) -> AsyncIterator[tuple[str, str]]:
        return self._history.follow(self._instance_names(names))

    def _instance_names(self, names: Sequence[str]) -> list[str]:
        return [p.name for p in self._select(names)] if names else []

    def request_shutdown(self, reason: str, force: bool = False) -> None:
        self._supervisor.request_shutdown(reason, force=force)

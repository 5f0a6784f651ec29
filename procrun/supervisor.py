"""The supervisor: owns the processes and the one event queue; decides restarts, shutdown and the
exit code. It knows nothing of what it supervises beyond the ProcessSpec.

Everything that happens arrives as a small typed event on one asyncio.Queue (a child exited, a
child stayed up long enough, a restart is due, a signal arrived, stdout went away) and one loop
decides. There is no polling interval anywhere: timers are set for the moment they matter.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Callable, Coroutine, Sequence

import structlog

from procrun.clock import Clock, wait_until
from procrun.crashloop import CrashLoop
from procrun.errors import ProcrunError
from procrun.events import (
    Event,
    MemoryExceeded,
    ProbeFailed,
    ProcessExited,
    ProcessReady,
    ProcessStarted,
    RestartDue,
    ShutdownRequested,
    SignalReceived,
    StatusReported,
)
from procrun.exits import settle_exit
from procrun.lifecycle import FINISHED_STATES, SETTLED_STATES, GiveUp, ProcessState, Restart
from procrun.ordering import DependencyOrder, StartQueue
from procrun.outcomes import exit_code
from procrun.output.relay import Relay
from procrun.process import ManagedProcess, Observer
from procrun.reaper import Reaper
from procrun.settings import GiveUpPolicy, ProcessSpec, SupervisorOptions
from procrun.shutdown import FIRST_WAITING_SECONDS, Shutdown
from procrun.watchdog import MemoryWatchdog

log = structlog.get_logger()

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
HANDLED_SIGNALS = (*STOP_SIGNALS, signal.SIGCHLD)


class Supervisor:
    def __init__(
        self,
        processes: Sequence[ProcessSpec],
        *,
        release: ProcessSpec | None = None,
        relay: Relay,
        clock: Clock,
        reaper: Reaper,
        queue: asyncio.Queue[Event] | None = None,
        options: SupervisorOptions | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.options = options or SupervisorOptions()
        self._observer = observer
        self._queue: asyncio.Queue[Event] = queue if queue is not None else asyncio.Queue()
        self.clock = self._clock = clock
        self._reaper = reaper
        self._relay = relay
        relay.reserve([spec.name for spec in (*processes, *([release] if release else []))])
        relay.on_lost = lambda: self.post(ShutdownRequested("stdout closed"))
        if relay.sink.lost:
            self.post(ShutdownRequested("stdout closed"))
        self.release = self._manage(release) if release else None
        self.processes = [self._manage(spec) for spec in processes]
        self._by_name = {p.name: p for p in self.everyone}
        self._crashes = CrashLoop(relay, clock)
        self._active: list[ManagedProcess] = []
        self._order = DependencyOrder(lambda: self._active)
        self.starts = StartQueue(self._order, interrupted=self._interrupted)
        self._shutdown: Shutdown | None = None
        self._shutdown_begun = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None

    def _manage(self, spec: ProcessSpec) -> ManagedProcess:
        return ManagedProcess(
            spec,
            clock=self._clock,
            relay=self._relay,
            reaper=self._reaper,
            post=self.post,
            observer=self._observer,
        )

    def post(self, event: Event) -> None:
        self._queue.put_nowait(event)

    @property
    def everyone(self) -> list[ManagedProcess]:
        """The release (if any) and every process, in Procfile order."""
        return [*([self.release] if self.release else []), *self.processes]

    @property
    def shutting_down(self) -> bool:
        return self._shutdown is not None

    async def shutdown_begun(self) -> None:
        await self._shutdown_begun.wait()

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run the release phase, then the formation, until all has stopped; the exit code."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                await self._run_phases()
            finally:
                if self._reaper.adopt_orphans:
                    deadline = self._shutdown.deadline if self._shutdown else None
                    await self._reaper.stop_orphans(self._clock, deadline, self._pump_for)
        return self._exit_code()

    async def _run_phases(self) -> None:
        if self.release is not None:
            await self._run_phase([self.release])
            if self._shutdown is not None and self.release.state is ProcessState.STOPPED:
                log.error("release.interrupted", process=self.release.name)  # never a success
                self._shutdown.cause = self.release  # so procrun's exit code is not 0
            if self.shutting_down or self.release.state is not ProcessState.EXITED:
                return
            log.info("release.succeeded", process=self.release.name)
        watchdog = MemoryWatchdog(
            self.processes,
            self._clock,
            lambda process, reason: self.post(MemoryExceeded(process.name, reason)),
        )
        watchdog.start()
        try:
            await self._run_phase(self.processes)
        finally:
            watchdog.stop()

    async def _run_phase(self, processes: list[ManagedProcess]) -> None:
        self._active = processes
        self.starts.waiting = list(processes)
        await self.starts.start_ready()
        if processes:  # else a release-only run, over with its release
            await self._pump_until(self._finished)

    def _interrupted(self) -> bool:
        while not self._queue.empty():  # a stop request that came in meanwhile starts nothing
            self._handle(self._queue.get_nowait())
        return self.shutting_down

    def _finished(self) -> bool:
        """Done when a shutdown has stopped everything, or when every process has finished on
        its own. A process stopped on request keeps procrun up, as does scaling all to 0."""
        if self.shutting_down:
            return all(p.state in SETTLED_STATES for p in self._active)
        return bool(self._active) and all(
            (p.state in FINISHED_STATES and not self._waits_for_change(p)) or self.starts.blocked(p)
            for p in self._active
        )

    def _waits_for_change(self, process: ManagedProcess) -> bool:
        """While watching, a process that watches files is never over: an edit may fix it."""
        return self.options.watching and bool(process.spec.settings.watch)

    async def _pump_until(self, done: Callable[[], bool]) -> None:
        while not done():
            self._handle(await self._queue.get())
            self._advance()

    def _advance(self) -> None:
        """After each event: start what now may start, or stop what no dependent holds up."""
        if self._shutdown is not None:
            self._shutdown.advance(self._order, self._clock, self._run_soon)
        elif self.starts.startable():
            self._run_soon(self.starts.start_ready())

    def _handle(self, event: Event) -> None:
        match event:
            case SignalReceived(signal=signal.SIGCHLD):
                self._reaper.reap()
            case SignalReceived(signal=sig):
                self._on_stop_signal(sig)
            case ShutdownRequested(reason=reason, force=False):
                if self._shutdown is None:
                    self._begin_shutdown(reason, cause=None)
            case ShutdownRequested(reason=reason, force=True):
                self._force_shutdown(reason)
            case ProcessStarted(process=name) if self._by_name[name].mark_running():
                self._crashes.came_up(self._by_name[name])
            case ProcessReady(process=name, probe=probe) if self._by_name[name].mark_running():
                self._crashes.came_up(self._by_name[name])
                seconds = round(self._by_name[name].record.ready_after or 0.0, 3)
                log.info("process.ready", process=name, probe=probe, seconds=seconds)
            case ProbeFailed(process=name, reason=reason, liveness=liveness):
                self._fail(self._by_name[name], reason, liveness=liveness)
            case StatusReported(process=name, text=text):
                self._by_name[name].report_status(text)
            case ProcessExited(process=name, returncode=returncode):
                self._on_exit(self._by_name[name], returncode)
            case RestartDue(process=name):
                self._run_soon(self._restart_after_backoff(self._by_name[name]))
            case MemoryExceeded(process=name, reason=reason):
                process = self._by_name[name]
                if not self.shutting_down and process.state is ProcessState.RUNNING:
                    self._run_soon(self.restart_process(process, reason, counted=True))

    def _fail(self, process: ManagedProcess, reason: str, *, liveness: bool) -> None:
        """A failed probe: stop it through its own stop sequence; the exit is a failure, so the
        restart rules (and the budget) decide what follows."""
        expected = ProcessState.RUNNING if liveness else ProcessState.STARTING
        if self.shutting_down or process.state is not expected:
            return
        event = "liveness.failed" if liveness else "probe.timed_out"
        log.warning(event, process=process.name, reason=reason)
        stopping = process.begin_stop(process.spec.settings.grace_seconds, reason, failed=True)
        if stopping is not None:
            self._run_soon(stopping)

    async def _restart_after_backoff(self, process: ManagedProcess) -> None:
        # Checked when the task runs, not when it was queued: a shutdown may have come between.
        if process.state is ProcessState.BACKOFF and not self.shutting_down:
            await process.spawn()

    def _run_soon(self, work: Coroutine[None, None, None]) -> None:
        if self._tasks is not None:
            self._tasks.create_task(work)
        else:
            work.close()

    # --- on request (control socket, memory watchdog) ------------------------------------------

    async def start_process(self, process: ManagedProcess, *, reason: str | None = None) -> bool:
        """Start a process that is not running, with a fresh restart budget; whether it was."""
        if process.state not in SETTLED_STATES or self.shutting_down:
            return False
        await process.spawn(reason=reason, fresh_budget=True)
        return True

    def add_processes(self, specs: Sequence[ProcessSpec]) -> list[ManagedProcess]:
        """More instances (a type left out at start, or scaled up), stopped until started."""
        if self._active is not self.processes:
            raise ProcrunError("procrun is still running the release: start it afterwards")
        self._relay.reserve([p.name for p in self.everyone] + [spec.name for spec in specs])
        listed = {p.name for p in self.everyone}  # not _by_name: it keeps the scaled-down ones
        added = [self._manage(spec) for spec in specs if spec.name not in listed]
        self.processes.extend(added)  # also the active list: the processes phase runs
        self._by_name.update((p.name, p) for p in added)
        return added

    async def stop_process(self, process: ManagedProcess, reason: str) -> None:
        """Stop with the process's own stop sequence and grace; it stays stopped until started.
        The full grace, until a shutdown begins: then its deadline binds this stop too."""
        stopping = process.begin_stop(process.spec.settings.grace_seconds, reason)
        if stopping is not None:
            self._run_soon(stopping)  # the supervisor's, not the caller's: a client may go away
        if self._shutdown is not None and self._shutdown.deadline is not None:
            process.cap_stop(self._shutdown.deadline)
        await process.wait_for_state(*SETTLED_STATES)

    async def restart_process(
        self, process: ManagedProcess, reason: str, *, counted: bool = False, queued: bool = False
    ) -> None:
        """Stop gracefully, then start again (`queued`: once its dependencies hold again);
        `counted` restarts count in `restarts`."""
        log.info("process.restart_requested", process=process.name, reason=reason)
        await self.stop_process(process, reason)
        if process.state not in SETTLED_STATES or self.shutting_down:
            return
        if queued:
            self.starts.waiting.append(process)
            self._advance()
        else:
            await process.spawn(reason=reason, fresh_budget=True, counted=counted)

    def _on_exit(self, process: ManagedProcess, returncode: int) -> None:
        restart_due = functools.partial(self.post, RestartDue(process.name))
        decision = settle_exit(
            process, returncode, self.shutting_down, self._clock, self._crashes, restart_due
        )
        match decision:
            case Restart():
                for dependent in self._order.restarted_with(process, self.starts.waiting):
                    why = f"{process.name} restarted"  # `restart_with`: once it holds again
                    self._run_soon(self.restart_process(dependent, why, queued=True))
            case GiveUp() if self._waits_for_change(process):
                log.warning("watch.waiting", process=process.name, hint="fix it and save")
            case GiveUp() if process is self.release:
                log.error("release.failed", process=process.name, returncode=returncode)
                self._begin_shutdown(f"{process.name} failed", cause=process)
            case GiveUp() if self.options.on_give_up is GiveUpPolicy.SHUTDOWN:
                self._begin_shutdown(f"{process.name} gave up", cause=process)

    # --- stopping --------------------------------------------------------------------------------

    def request_shutdown(self, reason: str, *, force: bool = False) -> None:
        """From outside the loop (the control socket): handled as an event, so the loop wakes
        even when nothing else would happen (every process already stopped)."""
        self.post(ShutdownRequested(reason, force))

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        if self._shutdown is None:
            self._begin_shutdown(f"received {sig.name}", cause=None)
        elif sig is signal.SIGINT:
            self._force_shutdown(f"received {sig.name} again")
        else:
            log.info("signal.ignored", signal=sig.name, reason="shutdown already under way")

    def _force_shutdown(self, reason: str) -> None:
        """The first force moves every stop to its last signal now and its SIGKILL shortly after
        (lifecycle.force_stop); any later one SIGKILLs everything at once."""
        shutdown = self._shutdown or self._begin_shutdown(reason, cause=None)
        shutdown.release_all(self._clock, self._run_soon)
        shutdown.force(reason, self._active, self.options.force_kill_seconds)
        if self._relay.paused:
            self._relay.abandon()  # a stalled stdout must not hold a forced stop

    def _begin_shutdown(self, reason: str, *, cause: ManagedProcess | None) -> Shutdown:
        timeout = self.options.shutdown_timeout_seconds
        deadline = None if timeout is None else self._clock.now() + timeout
        shutdown = self._shutdown = Shutdown(reason, cause, deadline)
        self._shutdown_begun.set()
        log.info("shutdown.started", reason=reason, deadline=timeout)
        self.starts.waiting.clear()
        shutdown.begin(
            self._active, timeout, order=self._order, clock=self._clock, run_soon=self._run_soon
        )
        shutdown.tell_waiting(self._active, self._clock, self._finished, FIRST_WAITING_SECONDS)
        if self._reaper.adopt_orphans:
            # Adopted daemons get their TERM now, in parallel, not after every grace has run out.
            self._reaper.signal_orphans(signal.SIGTERM)
        return shutdown

    async def _pump_for(self, seconds: float, done: Callable[[], bool]) -> bool:
        """Handle events until `done` or `seconds` pass; whether `done` came true."""
        pump = asyncio.ensure_future(self._pump_until(done))
        if not await wait_until(self._clock, pump, self._clock.now() + seconds):
            pump.cancel()
            return False
        return True

    def _exit_code(self) -> int:
        cause = self._shutdown.cause if self._shutdown is not None else None
        return exit_code(
            cause.record if cause is not None else None,
            [(p.state, p.record) for p in self.everyone],
        )

"""The supervisor: owns the processes and the one event queue; decides restarts, shutdown and the
exit code. It knows nothing of what it supervises beyond the ProcessSpec.

Everything that happens arrives as a small typed event on one asyncio.Queue (a child exited, a
child stayed up long enough, a restart is due, a signal arrived, stdout went away) and one loop
decides. There is no polling interval anywhere: timers are set for the moment they matter.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Sequence

import structlog

from procrun.clock import Clock, wait_until
from procrun.crashloop import CrashLoop
from procrun.errors import ProcrunError
from procrun.events import (
    Event,
    MemoryExceeded,
    ProcessExited,
    ProcessStarted,
    RestartDue,
    ShutdownRequested,
    SignalReceived,
)
from procrun.lifecycle import (
    FINISHED_STATES,
    SETTLED_STATES,
    Finish,
    GiveUp,
    ProcessState,
    Restart,
    decide_after_exit,
    describe_returncode,
    describe_stopped,
    exit_code,
    exit_was_wanted,
)
from procrun.output.relay import Relay
from procrun.process import ManagedProcess
from procrun.reaper import Reaper
from procrun.settings import GiveUpPolicy, ProcessSpec, SupervisorOptions
from procrun.shutdown import Shutdown
from procrun.watchdog import MemoryWatchdog

log = structlog.get_logger()

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
HANDLED_SIGNALS = (*STOP_SIGNALS, signal.SIGCHLD)
ORPHAN_GRACE_SECONDS = 2.0
FIRST_WAITING_SECONDS = 1.0  # a quick stop says nothing
WAITING_EVERY_SECONDS = 10.0


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
    ) -> None:
        self.options = options or SupervisorOptions()
        self._queue: asyncio.Queue[Event] = queue if queue is not None else asyncio.Queue()
        self._clock = clock
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
        self._shutdown: Shutdown | None = None
        self._shutdown_begun = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None

    def _manage(self, spec: ProcessSpec) -> ManagedProcess:
        return ManagedProcess(
            spec, clock=self._clock, relay=self._relay, reaper=self._reaper, post=self.post
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

    @property
    def clock(self) -> Clock:
        return self._clock

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> int:
        """Run the release phase, then the formation, until all has stopped; the exit code."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                await self._run_phases()
            finally:
                if self._reaper.adopt_orphans:
                    await self._stop_orphans()
        return self._exit_code()

    async def _run_phases(self) -> None:
        if self.release is not None:
            await self._run_phase([self.release])
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
        for process in processes:
            self._handle_pending()  # a stop request that came in meanwhile starts nothing more
            if self.shutting_down:
                break
            await process.spawn()
        await self._pump_until(self._finished)

    def _handle_pending(self) -> None:
        while not self._queue.empty():
            self._handle(self._queue.get_nowait())

    def _finished(self) -> bool:
        """Done when a shutdown has stopped everything, or when every process has finished on
        its own. A process stopped on request keeps procrun up, waiting to be started again."""
        if self.shutting_down:
            return all(p.state in SETTLED_STATES for p in self._active)
        return all(p.state in FINISHED_STATES for p in self._active)

    async def _pump_until(self, done: Callable[[], bool]) -> None:
        while not done():
            self._handle(await self._queue.get())

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
            case ProcessExited(process=name, returncode=returncode):
                self._on_exit(self._by_name[name], returncode)
            case RestartDue(process=name):
                self._run_soon(self._restart_after_backoff(self._by_name[name]))
            case MemoryExceeded(process=name, reason=reason):
                process = self._by_name[name]
                if not self.shutting_down and process.state is ProcessState.RUNNING:
                    self._run_soon(self.restart_process(process, reason, counted=True))

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
        """Supervise more instances (a type left out at start), stopped until started."""
        if self._active is not self.processes:
            raise ProcrunError("procrun is still running the release: start it afterwards")
        self._relay.reserve([p.name for p in self.everyone] + [spec.name for spec in specs])
        added = [self._manage(spec) for spec in specs if spec.name not in self._by_name]
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
        self, process: ManagedProcess, reason: str, *, counted: bool = False
    ) -> None:
        """Stop gracefully, then start again; `counted` restarts count in `restarts`."""
        log.info("process.restart_requested", process=process.name, reason=reason)
        await self.stop_process(process, reason)
        if process.state in SETTLED_STATES and not self.shutting_down:
            await process.spawn(reason=reason, fresh_budget=True, counted=counted)

    # --- exits -----------------------------------------------------------------------------------

    def _on_exit(self, process: ManagedProcess, returncode: int) -> None:
        outcome = describe_returncode(returncode)
        if process.state is ProcessState.STOPPING:
            self._crashes.exited(process, crashed=False)
            outcome = describe_stopped(process.spec.settings, returncode)
            process.finish_stop()
            log.info("process.stopped", process=process.name, returncode=returncode, how=outcome)
            return
        if self.shutting_down:
            # It ended on its own while everything is stopping: nothing to restart.
            self._crashes.exited(process, crashed=False)
            process.finish()
            log.info("process.exited", process=process.name, returncode=returncode, how=outcome)
            return
        settings = process.spec.settings
        failed = not exit_was_wanted(settings, returncode)
        now = self._clock.now()
        failures = process.record_exit(now, failed=failed)
        started = process.record.started_at
        uptime = None if started is None else now - started
        decision = decide_after_exit(settings, returncode, failures, uptime)
        self._crashes.exited(process, crashed=isinstance(decision, Restart | GiveUp))
        log_exit = log.info if returncode == 0 else log.warning
        log_exit("process.exited", process=process.name, returncode=returncode, how=outcome)
        match decision:
            case Finish():
                process.finish()
            case Restart(delay_seconds=delay):
                self._crashes.restarting(process)
                process.schedule_restart(delay, lambda: self.post(RestartDue(process.name)))
                log.info("process.restarting", process=process.name, delay=round(delay, 3))
            case GiveUp(reason=reason):
                process.give_up(reason)
                log.error("process.gave_up", process=process.name, reason=reason)
                if self.options.on_give_up is GiveUpPolicy.SHUTDOWN or process is self.release:
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
        shutdown.force(reason, self._active, self.options.force_kill_seconds)
        if self._relay.paused:
            self._relay.abandon()  # a stalled stdout must not hold a forced stop

    def _begin_shutdown(self, reason: str, *, cause: ManagedProcess | None) -> Shutdown:
        timeout = self.options.shutdown_timeout_seconds
        deadline = None if timeout is None else self._clock.now() + timeout
        shutdown = self._shutdown = Shutdown(reason, cause, deadline)
        self._shutdown_begun.set()
        log.info("shutdown.started", reason=reason, deadline=timeout)
        for stopping in shutdown.stop(self._active, timeout):
            self._run_soon(stopping)
        self._clock.call_at(self._clock.now() + FIRST_WAITING_SECONDS, self._tell_waiting)
        if self._reaper.adopt_orphans:
            # Adopted daemons get their TERM now, in parallel, not after every grace has run out.
            self._reaper.signal_orphans(signal.SIGTERM)
        return shutdown

    def _tell_waiting(self) -> None:
        """While the shutdown waits on long graces, say for what and until when, every so often."""
        if self._shutdown is None or self._finished():
            return
        if waiting := self._shutdown.waiting_for(self._active, self._clock.now()):
            log.info("shutdown.waiting", waiting_for=waiting, hint="Ctrl-C again to force")
        self._clock.call_at(self._clock.now() + WAITING_EVERY_SECONDS, self._tell_waiting)

    async def _stop_orphans(self) -> None:
        """Descendants that escaped their group (daemons) were adopted by procrun: stop them too,
        with their SIGKILL by the shutdown's deadline like everything else."""
        if not self._reaper.signal_orphans(signal.SIGTERM):
            return
        grace = ORPHAN_GRACE_SECONDS
        if self._shutdown is not None and self._shutdown.deadline is not None:
            grace = min(grace, max(self._shutdown.deadline - self._clock.now(), 0.0))
        if await self._pump_for(grace, lambda: not self._reaper.orphans()):
            return
        self._reaper.signal_orphans(signal.SIGKILL)
        await self._pump_for(ORPHAN_GRACE_SECONDS, lambda: not self._reaper.orphans())

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

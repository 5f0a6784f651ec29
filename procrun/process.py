"""ManagedProcess: one child, its process group, its state, and its stop sequence.

It spawns and signals; it does not decide. Exits are reported to the supervisor, which chooses
between restart, finish and give-up using the pure rules in lifecycle.py and tells the process
through the methods below. Every change of state, and of what goes with it (the reason shown by
`status`, the restart count, the failure history), is made here, in one method each; others
read the state and a frozen RunRecord.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Protocol

import structlog

from procrun import signals
from procrun.clock import Clock, Timer
from procrun.events import Event, ProbeFailed, ProcessExited, ProcessStarted
from procrun.lifecycle import (
    ALIVE_STATES,
    PlannedStep,
    ProcessState,
    RunRecord,
    StopOutcome,
    StopPlan,
    Target,
    check_transition,
    plan_stop,
    recent_failures,
)
from procrun.output.relay import Relay
from procrun.reaper import Reaper
from procrun.settings import ProcessSpec
from procrun.stopping import StopSequence, deliver

log = structlog.get_logger()

OUTPUT_DRAIN_SECONDS = 1.0
"""How long an exit waits for the rest of the child's output (a daemonised grandchild in another
session may hold the pipe open for ever)."""
SPAWN_FAILED_RETURNCODE = 127  # what a shell reports for a command it cannot run


Post = Callable[[Event], None]


class Observer(Protocol):
    """What watches each run of a process (its probes, procrun/health/): it may add to the
    environment of a spawn, and hears of the spawn and of every state change after it."""

    def environment(self, process: ManagedProcess) -> Mapping[str, str]: ...

    def spawned(self, process: ManagedProcess) -> None: ...

    def state_changed(self, process: ManagedProcess) -> None: ...


class ManagedProcess:
    def __init__(
        self,
        spec: ProcessSpec,
        *,
        clock: Clock,
        relay: Relay,
        reaper: Reaper,
        post: Post,
        observer: Observer | None = None,
    ) -> None:
        self.spec = spec
        self._observer = observer
        self._state = ProcessState.STOPPED
        self._pid: int | None = None
        self._record = RunRecord()
        self._failures: tuple[float, ...] = ()
        self._clock = clock
        self._relay = relay
        self._reaper = reaper
        self._post = post
        self._popen: subprocess.Popen[bytes] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._exited: asyncio.Future[int] | None = None
        self._timer: Timer | None = None
        self._state_changed = asyncio.Event()
        self._stopping: StopSequence | None = None
        self._failed_stop = False

    # --- what others read ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> ProcessState:
        return self._state

    @property
    def pid(self) -> int | None:
        """The leader's pid while the child has not been reaped."""
        return self._pid

    @property
    def record(self) -> RunRecord:
        return self._record

    @property
    def stop(self) -> StopPlan | None:
        """The stop under way (STOPPING), with what it has delivered and what is still to come."""
        if self._stopping is None or self._state is not ProcessState.STOPPING:
            return None
        return self._stopping.plan

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} {self.state} pid={self.pid}>"

    # --- state -----------------------------------------------------------------------------------

    def _transition(self, target: ProcessState, **details: object) -> None:
        """The one place a state changes: validated against the table, logged, waiters woken."""
        check_transition(self.name, self._state, target)
        self._state = target
        log.debug("process.state_changed", process=self.name, state=str(target), **details)
        self._state_changed.set()
        self._state_changed = asyncio.Event()
        if self._observer is not None:
            self._observer.state_changed(self)

    async def wait_for_state(self, *states: ProcessState) -> None:
        while self._state not in states:
            await self._state_changed.wait()

    def _set_timer(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self._clock.call_at(self._clock.now() + delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- starting --------------------------------------------------------------------------------

    async def spawn(
        self, *, reason: str | None = None, fresh_budget: bool = False, counted: bool = False
    ) -> None:
        """Start the child in a new session. A spawn that fails is reported like a failed exit.

        `reason` is shown by status while it starts; `fresh_budget` forgets past failures (a start
        on request); `counted` adds one to the restart count (a restart procrun decided on).
        """
        self._transition(ProcessState.STARTING)
        restarts = self._record.restarts + (1 if counted else 0)
        self._record = replace(
            self._record,
            reason=reason,
            stop_outcome=None,
            restarts=restarts,
            started_at=None,
            ready_after=None,
            status_text=None,
        )
        self._failed_stop = False
        if fresh_budget:
            self._failures = ()
        loop = asyncio.get_running_loop()
        self._exited = loop.create_future()
        self._drained = None
        read_fd, write_fd = os.pipe()
        env = {**self.spec.env, **(self._observer.environment(self) if self._observer else {})}
        try:
            self._popen = signals.spawn_in_new_session(self.spec.argv, env, self.spec.cwd, write_fd)
        except (OSError, subprocess.SubprocessError) as error:
            os.close(read_fd)
            log.error("process.spawn_failed", process=self.name, error=str(error))
            self._report_exit(SPAWN_FAILED_RETURNCODE, drained=None)
            return
        finally:
            os.close(write_fd)
        pid = self._pid = self._popen.pid
        self._record = replace(self._record, started_at=self._clock.now())
        # Created before the first await, so an instant crash still waits for its last lines.
        self._drained = loop.create_future()
        self._reaper.register(pid, self._on_reaped)
        # Logged before the await: by its end the child may have been reaped already.
        log.info("process.spawned", process=self.name, pid=pid, command=self.spec.command)
        await self._relay.attach(self.name, self.spec.kind, read_fd, self._drained)
        if self._state is not ProcessState.STARTING:
            return
        settings = self.spec.settings
        if settings.ready is None:
            self._set_timer(settings.min_uptime_seconds, self._on_min_uptime)
        else:
            # Ready when its probe says so (ProcessReady), or a failed start at the timeout.
            self._set_timer(settings.ready_timeout_seconds, self._on_ready_timeout)
            if self._observer is not None:
                self._observer.spawned(self)

    def _on_min_uptime(self) -> None:
        self._timer = None
        if self._state is ProcessState.STARTING:
            self._post(ProcessStarted(self.name))

    def _on_ready_timeout(self) -> None:
        self._timer = None
        if self._state is ProcessState.STARTING:
            timeout = self.spec.settings.ready_timeout_seconds
            self._post(ProbeFailed(self.name, f"not ready within {timeout:g} s"))

    def mark_running(self) -> bool:
        """Up for min_uptime, or its probe passed (the supervisor confirms, in event order);
        False when it exited or is stopping meanwhile (the timer or probe lost the race)."""
        if self._state is not ProcessState.STARTING:
            return False
        self._cancel_timer()
        started = self._record.started_at
        probed = self.spec.settings.ready is not None and started is not None
        ready_after = self._clock.now() - started if probed and started is not None else None
        self._record = replace(self._record, reason=None, ready_after=ready_after)  # it is up
        self._transition(ProcessState.RUNNING)
        log.info("process.running", process=self.name, pid=self._pid)
        return True

    def report_status(self, text: str) -> None:
        """An sd_notify STATUS= line from the process, for `procrun status`."""
        self._record = replace(self._record, status_text=text)

    # --- exiting ---------------------------------------------------------------------------------

    def _on_reaped(self, returncode: int) -> None:
        if self._popen is not None:
            self._popen.returncode = returncode  # so Popen never waits for a pid we reaped
        self._report_exit(returncode, drained=self._drained)

    def _report_exit(self, returncode: int, drained: asyncio.Future[None] | None) -> None:
        # The child is gone: nothing may signal its (reusable) pid again, and a stop waiting for
        # it is over. Only the event waits, so the exit is logged after the child's last lines.
        self._cancel_timer()
        self._pid = None
        self._record = replace(self._record, last_returncode=returncode)
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(returncode)
        if self._state in (ProcessState.STARTING, ProcessState.RUNNING):
            self._transition(ProcessState.DRAINING, returncode=returncode)
        event = ProcessExited(self.name, returncode)
        if drained is None or drained.done():
            asyncio.get_running_loop().call_soon(self._post, event)
        else:
            self._relay.after_drain(drained, OUTPUT_DRAIN_SECONDS, lambda: self._post(event))

    def record_exit(self, now: float, *, failed: bool) -> tuple[float, ...]:
        """Add this exit to the failure history if it `failed`; the failures still inside the
        restart window, this one included."""
        window = self.spec.settings.restart_window_seconds
        failures = recent_failures(self._failures, now, window)
        self._failures = (*failures, now) if failed else failures
        return self._failures

    def finish(self) -> None:
        """Exited on its own and stays so (a one-shot, a wanted exit, or during a shutdown)."""
        self._transition(ProcessState.EXITED)

    def finish_stop(self) -> None:
        """The stop that was asked for is complete: the child is reaped and its output drained."""
        self._transition(ProcessState.STOPPED)

    def schedule_restart(self, delay: float, callback: Callable[[], None]) -> None:
        """Wait `delay` in BACKOFF, then `callback`; the restart counts in `restarts`."""
        self._transition(ProcessState.BACKOFF, delay=delay)
        self._record = replace(self._record, restarts=self._record.restarts + 1)
        self._set_timer(delay, callback)

    def give_up(self, reason: str) -> None:
        self._transition(ProcessState.FATAL, reason=reason)
        self._record = replace(self._record, reason=reason)

    # --- stopping --------------------------------------------------------------------------------

    @property
    def failed_stop(self) -> bool:
        """The stop under way is procrun's answer to a failed probe: its exit is a failure."""
        return self._failed_stop and self._state is ProcessState.STOPPING

    def begin_stop(
        self, grace: float, reason: str, *, failed: bool = False
    ) -> Coroutine[None, None, None] | None:
        """Start stopping now; the returned coroutine runs the rest of the stop strategy.
        `failed`: the process failed a probe, so its exit goes through the restart rules.

        The state changes synchronously, so an exit that races the stop is seen as a stop.
        """
        match self._state:
            case ProcessState.BACKOFF:
                self._cancel_timer()
                self._record = replace(self._record, reason=reason)
                self._transition(ProcessState.STOPPED)
                return None
            case ProcessState.DRAINING:
                # Reaped already: nothing to signal; its exit event completes the stop.
                self._record = replace(self._record, reason=reason)
                self._stopping = None
                self._transition(ProcessState.STOPPING, grace=grace)
                return None
            case ProcessState.STARTING | ProcessState.RUNNING if self._exited is not None:
                self._cancel_timer()
                self._record = replace(self._record, reason=reason)
                self._failed_stop = failed
                plan = plan_stop(self.spec.settings, self._clock.now(), grace)
                self._stopping = StopSequence(
                    self.name, self.spec.settings, plan, self._clock, self._deliver, self._exited
                )
                self._transition(ProcessState.STOPPING, grace=grace)
                return self._stopping.run()
            case _:
                return None

    def cap_stop(self, deadline: float) -> None:
        """A shutdown began: a stop already under way ends by `deadline` (lifecycle.cap_stop)."""
        if self._stopping is not None and self._state is ProcessState.STOPPING:
            self._stopping.cap(deadline)

    def force_stop(self, kill_after: float) -> StopPlan | None:
        """Move the stop under way to its next step now (lifecycle.force_stop); the new plan."""
        if self._stopping is None or self._state is not ProcessState.STOPPING or self._pid is None:
            return None
        return self._stopping.force(kill_after)

    def kill_now(self) -> None:
        """SIGKILL the whole group at once (a third Ctrl-C)."""
        if self._state in ALIVE_STATES:
            self._deliver(PlannedStep(0.0, signal.SIGKILL, Target.GROUP))

    def send(self, sig: signal.Signals, *, group: bool = False) -> signals.Delivery:
        return self._deliver(PlannedStep(0.0, sig, Target.GROUP if group else Target.LEADER))

    def _deliver(self, step: PlannedStep) -> signals.Delivery:
        if self._pid is None:
            return signals.Delivery.GONE
        outcome = deliver(self.name, self._pid, step, self.spec.shell_leads)
        killed = outcome is signals.Delivery.DELIVERED and step.signal is signal.SIGKILL
        if outcome is signals.Delivery.DENIED:
            self._record = replace(self._record, stop_outcome=StopOutcome.DENIED)
        elif killed and self._record.stop_outcome is None:
            self._record = replace(self._record, stop_outcome=StopOutcome.KILLED)
        return outcome

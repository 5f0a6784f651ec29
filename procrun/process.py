"""ManagedProcess: one child, its process group, its state, and its stop sequence.

It spawns and signals; it does not decide. Exits are reported to the supervisor, which chooses
between restart, finish and give-up using the pure rules in lifecycle.py.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Callable, Coroutine
from dataclasses import dataclass

import structlog

from procrun import signals
from procrun.clock import Clock, Timer, wait_until
from procrun.lifecycle import (
    ProcessState,
    StopStep,
    Target,
    check_transition,
    stop_plan,
)
from procrun.output import Relay
from procrun.settings import ProcessSpec

log = structlog.get_logger()

SHELL = "/bin/sh"
OUTPUT_DRAIN_SECONDS = 1.0
"""How long an exit waits for the rest of the child's output (a daemonised grandchild in another
session may hold the pipe open for ever)."""
KILL_RETRY_MAX_SECONDS = 5.0
SPAWN_FAILED_RETURNCODE = 127  # what a shell reports for a command it cannot run

_SHELL_OPERATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", ";;", "|&", "\n"})
_SHELL_KEYWORDS = frozenset(
    {"if", "while", "until", "for", "case", "{", "!", "function", "select", "[[", "coproc"}
)
_LEADING_ASSIGNMENTS = re.compile(
    r"""\s*(?:[A-Za-z_][A-Za-z0-9_]*=(?:'[^']*'|"(?:\\.|[^"\\])*"|\\.|[^\s'"\\])*\s+)*"""
)


def shell_argv(command: str) -> list[str]:
    """Run `command` through /bin/sh, with `exec` so the program itself leads the process group.

    Without exec the shell would be the leader: it would receive the stop signal and die, leaving
    the real program to the SIGKILL at the deadline. Compound commands (`a && b`, pipelines, `;`,
    `&`, control structures) cannot be exec'd as a whole; they run under the shell, which then gets
    the stop signal. Leading `VAR=value` assignments stay in front of exec, where sh keeps them.
    """
    if _is_compound(command):
        return [SHELL, "-c", command]
    assignments = _LEADING_ASSIGNMENTS.match(command)
    split = assignments.end() if assignments else 0
    return [SHELL, "-c", f"{command[:split]}exec {command[split:]}"]


def _is_compound(command: str) -> bool:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: let the shell report it
        return True
    words = [t for t in tokens if not _LEADING_ASSIGNMENTS.fullmatch(t + " ")]
    if not words or words[0] in _SHELL_KEYWORDS or words[0] == "exec":
        return True
    return any(t in _SHELL_OPERATORS for t in tokens) or "`" in command or "$(" in command


@dataclass(frozen=True)
class ProcessExited:
    """Posted to the supervisor once a child has exited and its output has been drained."""

    process: ManagedProcess
    returncode: int


@dataclass(frozen=True)
class ProcessStarted:
    """Posted when a child has stayed up for min_uptime."""

    process: ManagedProcess


Post = Callable[[ProcessExited | ProcessStarted], None]


class ManagedProcess:
    def __init__(
        self,
        spec: ProcessSpec,
        *,
        clock: Clock,
        relay: Relay,
        reaper: signals.Reaper,
        post: Post,
    ) -> None:
        self.spec = spec
        self.state = ProcessState.STOPPED
        self.pid: int | None = None
        self.started_at: float | None = None
        self.restarts = 0
        self.failures: tuple[float, ...] = ()
        self.last_returncode: int | None = None
        self.reason: str | None = None  # why it is STOPPED, FATAL or restarting, for status
        self.killed_at_deadline = False
        self.stop_denied = False
        self._clock = clock
        self._relay = relay
        self._reaper = reaper
        self._post = post
        self._popen: subprocess.Popen[bytes] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._exited: asyncio.Future[int] | None = None
        self._timer: Timer | None = None
        self._state_changed = asyncio.Event()

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} {self.state} pid={self.pid}>"

    # --- state -----------------------------------------------------------------------------------

    def transition(self, target: ProcessState, **details: object) -> None:
        """The one place a state changes: validated against the table, logged, waiters woken."""
        check_transition(self.name, self.state, target)
        self.state = target
        log.debug("process.state_changed", process=self.name, state=str(target), **details)
        self._state_changed.set()
        self._state_changed = asyncio.Event()

    async def wait_for_state(self, *states: ProcessState) -> None:
        while self.state not in states:
            await self._state_changed.wait()

    def _set_timer(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self._clock.call_at(self._clock.now() + delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- starting --------------------------------------------------------------------------------

    async def spawn(self) -> None:
        """Start the child in a new session. A spawn that fails is reported like a failed exit."""
        self.transition(ProcessState.STARTING)
        self.reason = None
        self.killed_at_deadline = False
        self.stop_denied = False
        loop = asyncio.get_running_loop()
        self._exited = loop.create_future()
        self._drained = None
        read_fd, write_fd = os.pipe()
        # Signals stay blocked across fork, so none can reach the child while it still runs
        # procrun's handlers; the child unblocks them once it has reset its dispositions.
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals.CATCHABLE)
        try:
            # Blocking, but brief: Popen returns once exec has succeeded or failed.
            self._popen = subprocess.Popen(  # noqa: ASYNC220
                shell_argv(self.spec.command),
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=subprocess.STDOUT,
                cwd=self.spec.cwd,
                env=dict(self.spec.env),
                start_new_session=True,
                preexec_fn=functools.partial(signals.reset_signals_in_child, os.getpid()),
            )
        except (OSError, subprocess.SubprocessError) as error:
            os.close(read_fd)
            log.error("process.spawn_failed", process=self.name, error=str(error))
            self._report_exit(SPAWN_FAILED_RETURNCODE, drained=None)
            return
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
            os.close(write_fd)
        self.pid = self._popen.pid
        self.started_at = self._clock.now()
        # Created before the first await, so an instant crash still waits for its last lines.
        self._drained = loop.create_future()
        self._reaper.register(self.pid, self._on_reaped)
        await self._relay.attach(self.name, self.spec.kind, read_fd, self._drained)
        log.info("process.spawned", process=self.name, pid=self.pid, command=self.spec.command)
        self._set_timer(self.spec.settings.min_uptime_seconds, self._on_min_uptime)

    def _on_min_uptime(self) -> None:
        self._timer = None
        if self.state is ProcessState.STARTING:
            self._post(ProcessStarted(self))

    def _on_reaped(self, returncode: int) -> None:
        if self._popen is not None:
            self._popen.returncode = returncode  # so Popen never waits for a pid we reaped
        self._report_exit(returncode, drained=self._drained)

    def _report_exit(self, returncode: int, drained: asyncio.Future[None] | None) -> None:
        # The child is gone: nothing may signal its (reusable) pid again, and a stop waiting for
        # it is over. Only the event waits, so the exit is logged after the child's last lines.
        self._cancel_timer()
        self.pid = None
        self.last_returncode = returncode
        if self._exited is not None and not self._exited.done():
            self._exited.set_result(returncode)
        event = ProcessExited(self, returncode)
        if drained is None or drained.done():
            asyncio.get_running_loop().call_soon(self._post, event)
        else:
            self._relay.after_drain(drained, OUTPUT_DRAIN_SECONDS, lambda: self._post(event))

    # --- restarting ------------------------------------------------------------------------------

    def schedule_restart(self, delay: float, callback: Callable[[], None]) -> None:
        self.transition(ProcessState.BACKOFF, delay=delay)
        self._set_timer(delay, callback)

    # --- stopping --------------------------------------------------------------------------------

    def begin_stop(self, grace: float) -> Coroutine[None, None, None] | None:
        """Start stopping now; the returned coroutine runs the rest of the stop strategy.

        The state changes synchronously, so an exit that races the stop is seen as a stop.
        """
        if self.state is ProcessState.BACKOFF:
            self._cancel_timer()
            self.transition(ProcessState.STOPPED)
            return None
        exited = self._exited
        if self.state not in (ProcessState.STARTING, ProcessState.RUNNING) or exited is None:
            return None
        if exited.done():
            return None  # reaped; its exit event is on the way
        self._cancel_timer()
        self.transition(ProcessState.STOPPING, grace=grace)
        return self._run_stop_plan(grace, exited)

    async def _run_stop_plan(self, grace: float, exited: asyncio.Future[int]) -> None:
        """Stop signal to the leader, optional second signal before the deadline, SIGKILL to the
        whole group at the deadline; if a kill is denied, keep trying: never count it as stopped."""
        started = self._clock.now()
        for step in stop_plan(self.spec.settings, grace):
            if await wait_until(self._clock, exited, started + step.at_seconds):
                return
            self._deliver(step)
        retry = 0.5
        while not await wait_until(self._clock, exited, self._clock.now() + retry):
            self._deliver(StopStep(0.0, signal.SIGKILL, Target.GROUP))
            retry = min(retry * 2, KILL_RETRY_MAX_SECONDS)

    def kill_now(self) -> None:
        """SIGKILL the whole group at once (a second Ctrl-C)."""
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING, ProcessState.STOPPING):
            self._deliver(StopStep(0.0, signal.SIGKILL, Target.GROUP))

    def send(self, sig: signal.Signals, *, group: bool = False) -> signals.Delivery:
        return self._deliver(StopStep(0.0, sig, Target.GROUP if group else Target.LEADER))

    def _deliver(self, step: StopStep) -> signals.Delivery:
        pid = self.pid
        if pid is None:
            return signals.Delivery.GONE
        if step.target is Target.GROUP:
            outcome = signals.send_group_signal(pid, step.signal)
        else:
            outcome = signals.send_signal(pid, step.signal)
        if step.signal is signal.SIGKILL and outcome is signals.Delivery.DELIVERED:
            self.killed_at_deadline = True
        fields = {"process": self.name, "pid": pid, "signal": step.signal.name}
        match outcome:
            case signals.Delivery.DENIED:
                self.stop_denied = True
                hint = "the process runs as another user; procrun needs CAP_KILL or the same uid"
                log.error("signal.denied", **fields, target=str(step.target), hint=hint)
            case signals.Delivery.DELIVERED:
                log.info("signal.sent", **fields, target=str(step.target))
            case signals.Delivery.GONE:
                log.debug("signal.gone", **fields, target=str(step.target))
        return outcome

"""Process states and pure decisions about them: legal moves, when to restart, how to stop.

Nothing here touches the OS or the event loop, so every rule is tested as plain functions.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass

from procrun.settings import ProcessSettings, RestartPolicy


class ProcessState(enum.StrEnum):
    """supervisord's vocabulary, which users of `supervisorctl status` already read."""

    STOPPED = "STOPPED"  # not running, because it was asked to stop or has not started
    STARTING = "STARTING"  # spawned, not yet up for min_uptime
    RUNNING = "RUNNING"
    DRAINING = "DRAINING"  # exited on its own; its last output is still being relayed
    BACKOFF = "BACKOFF"  # exited unexpectedly; a restart is scheduled
    STOPPING = "STOPPING"  # its stop sequence is under way
    EXITED = "EXITED"  # finished on its own and is not restarted (one-shot, on-failure with 0)
    FATAL = "FATAL"  # gave up: restart budget spent, or restart policy "never" after a failure


TRANSITIONS: dict[ProcessState, frozenset[ProcessState]] = {
    ProcessState.STOPPED: frozenset({ProcessState.STARTING}),
    ProcessState.STARTING: frozenset(
        {ProcessState.RUNNING, ProcessState.STOPPING, ProcessState.DRAINING}
    ),
    ProcessState.RUNNING: frozenset({ProcessState.STOPPING, ProcessState.DRAINING}),
    # Every exit the supervisor did not ask for passes here, so the decision (restart, finish,
    # give up) is made once the last line is out; a stop request meanwhile has nothing to signal.
    ProcessState.DRAINING: frozenset(
        {ProcessState.BACKOFF, ProcessState.EXITED, ProcessState.FATAL, ProcessState.STOPPING}
    ),
    ProcessState.BACKOFF: frozenset({ProcessState.STARTING, ProcessState.STOPPED}),
    ProcessState.STOPPING: frozenset({ProcessState.STOPPED}),
    ProcessState.EXITED: frozenset({ProcessState.STARTING}),
    ProcessState.FATAL: frozenset({ProcessState.STARTING}),
}

ALIVE_STATES = frozenset({ProcessState.STARTING, ProcessState.RUNNING, ProcessState.STOPPING})
"""States in which a child runs or is being stopped (STOPPING lasts until its output is drained)."""

SETTLED_STATES = frozenset({ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL})
"""States in which nothing is running or scheduled."""

FINISHED_STATES = frozenset({ProcessState.EXITED, ProcessState.FATAL})
"""Settled on its own: nobody asked it to stop, and it will not be restarted."""


class IllegalTransitionError(RuntimeError):
    """A bug in procrun: a state change the table does not allow."""

    def __init__(self, process: str, current: ProcessState, target: ProcessState) -> None:
        super().__init__(f"{process}: illegal state change {current} -> {target}")
        self.current = current
        self.target = target


def check_transition(process: str, current: ProcessState, target: ProcessState) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransitionError(process, current, target)


# --- after an exit -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Restart:
    delay_seconds: float


@dataclass(frozen=True)
class Finish:
    """The exit was wanted: the process stays EXITED and the others carry on."""


@dataclass(frozen=True)
class GiveUp:
    reason: str


ExitDecision = Restart | Finish | GiveUp


def exit_was_wanted(settings: ProcessSettings, returncode: int) -> bool:
    """A clean exit is only unexpected for a long-running process whose policy is `always`."""
    if returncode != 0:
        return False
    return settings.oneshot or settings.restart is not RestartPolicy.ALWAYS


def recent_failures(failures: tuple[float, ...], now: float, window: float) -> tuple[float, ...]:
    """The failure times still inside the sliding restart window."""
    return tuple(t for t in failures if now - t < window)


def backoff_delay(settings: ProcessSettings, failures_in_window: int) -> float:
    """The first failure in the window restarts at once (a one-off crash costs no downtime);
    the second waits `backoff_initial_seconds`, doubling per further failure, capped.

    Because the count comes from the sliding window, a process that stays up for a whole window is
    back to the immediate first restart: that is the reset after a stable period.
    """
    if failures_in_window <= 1:
        return 0.0
    exponent = failures_in_window - 2
    # Cap the exponent before raising so a long crash history cannot overflow a float.
    delay = settings.backoff_initial_seconds * 2.0 ** min(exponent, 64)
    return min(delay, settings.backoff_max_seconds)


def decide_after_exit(
    settings: ProcessSettings, returncode: int, failures: tuple[float, ...]
) -> ExitDecision:
    """What to do when a process exits on its own. `failures` already includes this exit if it
    counts as one, and holds only the failures inside the restart window."""
    if exit_was_wanted(settings, returncode):
        return Finish()
    if settings.restart is RestartPolicy.NEVER:
        return GiveUp("restart policy is never")
    if len(failures) > settings.max_restarts:
        return GiveUp(
            f"exited {len(failures)} times within {settings.restart_window_seconds:g} s "
            f"(max_restarts {settings.max_restarts})"
        )
    return Restart(backoff_delay(settings, len(failures)))


# --- stopping ----------------------------------------------------------------------------------


class Target(enum.StrEnum):
    LEADER = "leader"  # the main pid only: a group SIGTERM would kill Celery's running tasks
    GROUP = "group"  # the whole process group: nothing may outlive the deadline


@dataclass(frozen=True)
class StopStep:
    at_seconds: float  # from the start of the stop
    signal: signal.Signals
    target: Target


def effective_grace(settings: ProcessSettings, shutdown_timeout: float | None) -> float:
    """The grace, cut to the global deadline so the platform's SIGKILL never comes first."""
    if shutdown_timeout is None:
        return settings.grace_seconds
    return min(settings.grace_seconds, shutdown_timeout)


def second_signal_margin(settings: ProcessSettings, grace: float) -> float:
    """How long before the deadline the second signal goes: the configured margin, but at most
    half the grace, so a short deadline still leaves the first signal time to work (a Celery
    worker cut to 8 s gets 4 s of warm shutdown before QUIT, not none)."""
    return min(settings.second_signal_margin_seconds, grace / 2)


def stop_plan(settings: ProcessSettings, grace: float) -> tuple[StopStep, ...]:
    """Stop signal to the leader now; optional second signal before the deadline; SIGKILL to the
    whole group at the deadline."""
    steps = [StopStep(0.0, settings.stop_signal, Target.LEADER)]
    second = settings.second_signal
    if second is not None and second != settings.stop_signal:
        at = grace - second_signal_margin(settings, grace)
        steps.append(StopStep(at, second, Target.LEADER))
    steps.append(StopStep(grace, signal.SIGKILL, Target.GROUP))
    return tuple(steps)

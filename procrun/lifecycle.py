"""Process states and pure decisions about them: legal moves, when to restart, how to stop.

Nothing here touches the OS or the event loop, so every rule is tested as plain functions.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass, replace

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
    # A stop procrun began because the process failed a probe ends as a failed exit would.
    ProcessState.STOPPING: frozenset(
        {ProcessState.STOPPED, ProcessState.BACKOFF, ProcessState.FATAL}
    ),
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


# --- what is known of a process --------------------------------------------------------------


class StopOutcome(enum.Enum):
    """What a stop had to do beyond its stop signal, for procrun's own exit code."""

    KILLED = "killed"  # a SIGKILL was delivered
    DENIED = "denied"  # a signal was refused (EPERM): the process may live on


@dataclass(frozen=True)
class RunRecord:
    """What is known of a process beyond its state, for status and the exit code. Frozen: only
    ManagedProcess makes a new one, in the method that makes the change."""

    started_at: float | None = None
    restarts: int = 0
    last_returncode: int | None = None
    reason: str | None = None
    """Why it is STOPPED, FATAL, stopping or restarting."""
    ready_after: float | None = None
    """Seconds from spawn to its readiness probe passing, while it runs."""
    status_text: str | None = None
    """Its last sd_notify STATUS= line, since the last spawn."""
    stop_outcome: StopOutcome | None = None
    """Since the last spawn: whether a SIGKILL was needed or a signal was refused."""


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


COMMAND_NOT_FOUND = 127
"""What a shell exits with when it cannot find the command."""
COMMAND_NOT_RUNNABLE = 126
"""What a shell exits with when it finds the command but cannot run it (not executable)."""
EX_CONFIG = 78
"""sysexits.h's configuration error: a program that refuses to start as configured (a missing
credential, say) exits with it, and no restart can change its configuration."""

# Exits that no restart can fix, when they come before min_uptime: given up at once.
_HOPELESS_AT_ONCE = {
    COMMAND_NOT_FOUND: "command not found (exit 127 at once)",
    COMMAND_NOT_RUNNABLE: "command cannot be run (exit 126 at once)",
    EX_CONFIG: "configuration error (exit 78, EX_CONFIG, at once)",
}


def decide_after_exit(
    settings: ProcessSettings,
    returncode: int,
    failures: tuple[float, ...],
    uptime: float | None = None,
) -> ExitDecision:
    """What to do when a process exits on its own. `failures` already includes this exit if it
    counts as one, and holds only the failures inside the restart window; `uptime` is how long
    it ran (None when it never started)."""
    if exit_was_wanted(settings, returncode):
        return Finish()
    hopeless = _HOPELESS_AT_ONCE.get(returncode)
    if hopeless and uptime is not None and uptime < settings.min_uptime_seconds:
        # The shell could not run it, or it refused its configuration: no restart changes that.
        return GiveUp(hopeless)
    if settings.oneshot and settings.restart is RestartPolicy.NEVER:  # the release, say
        how = f"exit code {returncode}" if returncode >= 0 else f"signal {-returncode}"
        return GiveUp(f"failed with {how}")
    return decide_after_failure(settings, failures)


def decide_after_failure(settings: ProcessSettings, failures: tuple[float, ...]) -> ExitDecision:
    """Restart or give up after a failure: an unwanted exit, or a failed probe procrun stopped
    the process for (it never became ready, or stopped answering its liveness probe)."""
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


# --- a stop under way, against the deadline ---------------------------------------------------
#
# The invariant: once a shutdown has begun with a deadline D, every stop ends with its SIGKILL to
# the group at or before D, whether the shutdown began it or it was already under way (a stop or
# restart on request, the memory watchdog). A stop already under way keeps the steps it has
# delivered; each step still to come is re-timed within the window that is left, so the second
# signal comes early enough to work (half the window at most, as for any stop), and a step whose
# new time has passed goes at once. Re-planning only ever moves a step earlier. A forced stop
# (a second Ctrl-C) moves the next step to now; a second signal sent that way is followed by the
# SIGKILL a short, fixed time later; a third forces the SIGKILL at once.


@dataclass(frozen=True)
class PlannedStep:
    at: float  # on the supervisor's clock
    signal: signal.Signals
    target: Target


@dataclass(frozen=True)
class StopPlan:
    started: float
    steps: tuple[PlannedStep, ...]
    delivered: int = 0
    """How many of `steps` have been delivered."""

    @property
    def next(self) -> PlannedStep | None:
        return self.steps[self.delivered] if self.delivered < len(self.steps) else None

    @property
    def kill_at(self) -> float:
        """When the SIGKILL to the group goes (the last step)."""
        return self.steps[-1].at

    def after_delivery(self) -> StopPlan:
        return replace(self, delivered=self.delivered + 1)


def plan_stop(settings: ProcessSettings, started: float, grace: float) -> StopPlan:
    """The stop plan of a stop beginning at `started` with `grace`, on the clock."""
    steps = tuple(
        PlannedStep(started + step.at_seconds, step.signal, step.target)
        for step in stop_plan(settings, grace)
    )
    return StopPlan(started, steps)


def cap_stop(settings: ProcessSettings, plan: StopPlan, deadline: float) -> StopPlan:
    """`plan` bound by a shutdown `deadline`: the SIGKILL at the latest at the deadline, the steps
    still to come re-timed as a stop from the same start with the shorter window would have
    them, none moved later."""
    if plan.kill_at <= deadline:
        return plan
    fresh = plan_stop(settings, plan.started, max(deadline - plan.started, 0.0))
    fresh_at = {(step.signal, step.target): step.at for step in fresh.steps}
    pending = tuple(
        replace(old, at=min(old.at, fresh_at.get((old.signal, old.target), deadline), deadline))
        for old in plan.steps[plan.delivered :]
    )
    return replace(plan, steps=plan.steps[: plan.delivered] + pending)


def force_stop(plan: StopPlan, now: float, kill_after: float) -> StopPlan:
    """A forced stop: the last signal before the SIGKILL that is still to come (the second
    signal, for a Celery worker: QUIT requeues its tasks) goes now, and the SIGKILL `kill_after`
    later (sooner if the plan had it sooner); with only the SIGKILL left, it goes now."""
    done = plan.steps[: plan.delivered]
    pending = plan.steps[plan.delivered :]
    if not pending:
        return plan
    kill = pending[-1]
    if len(pending) == 1:
        return replace(plan, steps=(*done, replace(kill, at=now)))
    last_signal = replace(pending[-2], at=now)
    return replace(
        plan, steps=(*done, last_signal, replace(kill, at=min(kill.at, now + kill_after)))
    )


def describe_forced(name: str, plan: StopPlan) -> str:
    """`worker.1 gets SIGQUIT now, SIGKILL in 3 s`, for the forced stop's message."""
    step = plan.next
    if step is None:
        return f"{name} has nothing left to receive"
    kill = f", SIGKILL in {plan.kill_at - step.at:g} s" if plan.kill_at > step.at else ""
    return f"{name} gets {step.signal.name} now{kill}"

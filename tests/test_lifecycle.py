import signal
from dataclasses import replace

import pytest

from procrun.lifecycle import (
    TRANSITIONS,
    Finish,
    GiveUp,
    IllegalTransitionError,
    ProcessState,
    Restart,
    StopStep,
    Target,
    backoff_delay,
    check_transition,
    decide_after_exit,
    effective_grace,
    exit_was_wanted,
    recent_failures,
    stop_plan,
)
from procrun.settings import ProcessSettings, RestartPolicy

S = ProcessSettings()


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(ProcessState)


def test_illegal_transition_names_both_states() -> None:
    with pytest.raises(
        IllegalTransitionError, match=r"web\.1: illegal state change STOPPED -> RUNNING"
    ):
        check_transition("web.1", ProcessState.STOPPED, ProcessState.RUNNING)
    check_transition("web.1", ProcessState.RUNNING, ProcessState.STOPPING)


@pytest.mark.parametrize(
    ("settings", "returncode", "wanted"),
    [
        (S, 0, False),  # always: even a clean exit of a long-running process is unexpected
        (S, 1, False),
        (replace(S, restart=RestartPolicy.ON_FAILURE), 0, True),
        (replace(S, restart=RestartPolicy.NEVER), 0, True),
        (replace(S, oneshot=True), 0, True),
        (replace(S, oneshot=True), 2, False),
    ],
)
def test_exit_was_wanted(settings: ProcessSettings, returncode: int, wanted: bool) -> None:
    assert exit_was_wanted(settings, returncode) is wanted


def test_first_restart_is_immediate_then_backoff_doubles_to_the_cap() -> None:
    settings = replace(S, backoff_initial_seconds=0.1, backoff_max_seconds=1.0)
    delays = [backoff_delay(settings, n) for n in range(1, 8)]
    assert delays == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff_delay(settings, 10_000) == 1.0  # no overflow on a long history


def test_failures_leave_the_window_which_resets_the_backoff() -> None:
    failures = (10.0, 50.0, 95.0)
    assert recent_failures(failures, now=100.0, window=60.0) == (50.0, 95.0)
    assert recent_failures(failures, now=1000.0, window=60.0) == ()


def test_decisions() -> None:
    assert decide_after_exit(S, 1, (1.0,)) == Restart(0.0)
    assert decide_after_exit(S, 1, (1.0, 2.0, 3.0)) == Restart(0.2)
    assert decide_after_exit(replace(S, oneshot=True), 0, ()) == Finish()
    budget = replace(S, max_restarts=2)
    assert isinstance(decide_after_exit(budget, 1, (1.0, 2.0)), Restart)
    gave_up = decide_after_exit(budget, 1, (1.0, 2.0, 3.0))
    assert isinstance(gave_up, GiveUp)
    assert "max_restarts 2" in gave_up.reason
    never = decide_after_exit(replace(S, restart=RestartPolicy.NEVER), 3, (1.0,))
    assert never == GiveUp("restart policy is never")


@pytest.mark.parametrize(
    ("returncode", "reason"),
    [
        (127, "command not found (exit 127 at once)"),
        (126, "command cannot be run (exit 126 at once)"),
        (78, "configuration error (exit 78, EX_CONFIG, at once)"),
    ],
)
def test_an_exit_no_restart_can_fix_is_given_up_at_once(returncode: int, reason: str) -> None:
    """Only before min_uptime: later, the same code is an ordinary failure and restarts."""
    quick = replace(S, min_uptime_seconds=1.0)
    assert decide_after_exit(quick, returncode, (1.0,), uptime=0.2) == GiveUp(reason)
    assert decide_after_exit(quick, returncode, (1.0,), uptime=5.0) == Restart(0.0)


def test_stop_plan_signals_the_leader_then_kills_the_group() -> None:
    assert stop_plan(S, 30.0) == (
        StopStep(0.0, signal.SIGTERM, Target.LEADER),
        StopStep(30.0, signal.SIGKILL, Target.GROUP),
    )


def test_celery_plan_sends_quit_before_the_deadline() -> None:
    celery = replace(S, grace_seconds=600.0, second_signal=signal.SIGQUIT)
    assert stop_plan(celery, 600.0) == (
        StopStep(0.0, signal.SIGTERM, Target.LEADER),
        StopStep(590.0, signal.SIGQUIT, Target.LEADER),
        StopStep(600.0, signal.SIGKILL, Target.GROUP),
    )
    # A deadline shorter than twice the margin: QUIT halfway, so warm shutdown still gets time.
    assert stop_plan(celery, 8.0)[1] == StopStep(4.0, signal.SIGQUIT, Target.LEADER)
    assert stop_plan(celery, 20.0)[1] == StopStep(10.0, signal.SIGQUIT, Target.LEADER)
    assert stop_plan(celery, 25.0)[1] == StopStep(15.0, signal.SIGQUIT, Target.LEADER)


def test_shutdown_deadline_caps_the_grace() -> None:
    worker = replace(S, grace_seconds=600.0)
    assert effective_grace(worker, None) == 600.0
    assert effective_grace(worker, 25.0) == 25.0
    assert effective_grace(replace(S, grace_seconds=5.0), 25.0) == 5.0

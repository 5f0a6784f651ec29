"""The deadline invariant of lifecycle.py as pure functions: every stop, begun by the shutdown or
already under way, ends by the shutdown's deadline; re-planning only moves steps earlier; a forced
stop sends its last signal now and SIGKILLs shortly after."""

import signal
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from procrun.lifecycle import (
    PlannedStep,
    StopPlan,
    Target,
    cap_stop,
    describe_forced,
    force_stop,
    plan_stop,
)
from procrun.settings import ProcessSettings

CELERY = ProcessSettings(grace_seconds=600.0, second_signal=signal.SIGQUIT)
WEB = ProcessSettings(grace_seconds=30.0)


def test_the_reported_bug_a_restart_in_flight_is_bound_by_the_shutdown() -> None:
    """`restart worker` at t=0 (600 s grace, QUIT at 590 s), SIGTERM to procrun at t=2 with a
    15 s deadline: QUIT must come long before 17 s, and SIGKILL at 17 s, not 600 s."""
    plan = plan_stop(CELERY, 0.0, 600.0).after_delivery()  # TERM went at 0
    capped = cap_stop(CELERY, plan, deadline=17.0)
    assert capped.steps == (
        PlannedStep(0.0, signal.SIGTERM, Target.LEADER),
        PlannedStep(8.5, signal.SIGQUIT, Target.LEADER),  # half the 17 s window: margin capped
        PlannedStep(17.0, signal.SIGKILL, Target.GROUP),
    )
    assert capped.delivered == 1


def test_a_stop_begun_by_the_shutdown_is_unchanged_by_its_own_deadline() -> None:
    plan = plan_stop(CELERY, 100.0, 25.0)
    assert cap_stop(CELERY, plan, deadline=125.0) == plan


def test_a_second_signal_whose_new_time_has_passed_is_due_at_once() -> None:
    """The worker has warm-shut-down for 50 s already; a deadline 5 s away puts QUIT (10 s before
    the new end) in the past: it is due now (the stop loop delivers a past step at once)."""
    plan = plan_stop(CELERY, 0.0, 600.0).after_delivery()
    capped = cap_stop(CELERY, plan, deadline=55.0)
    assert capped.next == PlannedStep(45.0, signal.SIGQUIT, Target.LEADER)
    assert capped.kill_at == 55.0


def test_forcing_a_celery_worker_sends_quit_now_and_kills_soon_after() -> None:
    plan = plan_stop(CELERY, 0.0, 600.0).after_delivery()
    forced = force_stop(plan, now=5.0, kill_after=3.0)
    assert forced.next == PlannedStep(5.0, signal.SIGQUIT, Target.LEADER)
    assert forced.kill_at == 8.0
    assert describe_forced("worker.1", forced) == "worker.1 gets SIGQUIT now, SIGKILL in 3 s"


def test_forcing_after_the_second_signal_kills_now() -> None:
    plan = plan_stop(CELERY, 0.0, 600.0).after_delivery().after_delivery()
    forced = force_stop(plan, now=595.0, kill_after=3.0)
    assert forced.next == PlannedStep(595.0, signal.SIGKILL, Target.GROUP)
    assert describe_forced("worker.1", forced) == "worker.1 gets SIGKILL now"


def test_forcing_a_process_without_a_second_signal_kills_now() -> None:
    plan = plan_stop(WEB, 0.0, 30.0).after_delivery()
    assert force_stop(plan, now=1.0, kill_after=3.0).next == PlannedStep(
        1.0, signal.SIGKILL, Target.GROUP
    )


settings_strategy = st.builds(
    ProcessSettings,
    grace_seconds=st.floats(0.0, 3600.0),
    second_signal=st.sampled_from([None, signal.SIGQUIT, signal.SIGINT]),
    second_signal_margin_seconds=st.floats(0.0, 600.0),
)


@st.composite
def stops_under_way(draw: st.DrawFn) -> tuple[ProcessSettings, StopPlan, float]:
    """A stop at some point of its plan, and the time now (not before its last delivery)."""
    settings = draw(settings_strategy)
    started = draw(st.floats(0.0, 1000.0))
    plan = plan_stop(settings, started, settings.grace_seconds)
    for _ in range(draw(st.integers(1, len(plan.steps) - 1))):
        plan = plan.after_delivery()
    last_delivered = plan.steps[plan.delivered - 1].at
    now = draw(st.floats(last_delivered, max(plan.kill_at, last_delivered)))
    return settings, plan, now


@given(stops_under_way(), st.floats(0.0, 3600.0))
def test_a_capped_stop_ends_by_the_deadline_and_moves_nothing_later(
    stop: tuple[ProcessSettings, StopPlan, float], timeout: float
) -> None:
    settings, plan, now = stop
    deadline = now + timeout
    capped = cap_stop(settings, plan, deadline)
    assert capped.kill_at <= deadline
    assert capped.kill_at <= plan.kill_at
    assert capped.steps[: plan.delivered] == plan.steps[: plan.delivered], "history is history"
    assert capped.delivered == plan.delivered
    for old, new in zip(plan.steps, capped.steps, strict=True):
        assert (new.signal, new.target) == (old.signal, old.target)
        assert new.at <= old.at
    pending = [step.at for step in capped.steps[capped.delivered :]]
    assert pending == sorted(pending), "steps stay in order"
    assert capped.steps[-1] == replace(plan.steps[-1], at=capped.kill_at), "SIGKILL to the group"


@given(stops_under_way(), st.floats(0.0, 3600.0), st.floats(0.1, 10.0))
def test_a_forced_stop_acts_now_and_never_later_than_planned(
    stop: tuple[ProcessSettings, StopPlan, float], timeout: float, kill_after: float
) -> None:
    settings, plan, now = stop
    capped = cap_stop(settings, plan, now + timeout)
    forced = force_stop(capped, now, kill_after)
    step = forced.next
    assert step is not None
    assert step.at == now
    assert forced.kill_at <= min(capped.kill_at, now + kill_after) or forced.kill_at == now
    assert forced.steps[-1].signal is signal.SIGKILL
    if capped.next is not None and capped.next.signal is not signal.SIGKILL:
        assert step.signal is capped.steps[-2].signal, "the last signal before the kill goes now"
    if forced.delivered + 1 < len(forced.steps):  # a last signal went: forcing again kills now
        killed = force_stop(forced.after_delivery(), now, kill_after).next
        assert killed == PlannedStep(now, signal.SIGKILL, Target.GROUP)

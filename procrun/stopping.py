"""Stopping a child, as one strategy: each step of its StopPlan at its time (stop signal to the
leader, an optional second signal, SIGKILL to the group), re-planned while it runs when a shutdown
sets a deadline or a second Ctrl-C forces it. The plans themselves are lifecycle.py's pure
functions; this module only waits and delivers.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Callable

import structlog

from procrun import signals
from procrun.clock import Clock, wait_until
from procrun.lifecycle import PlannedStep, StopPlan, Target, cap_stop, force_stop
from procrun.reaper import list_children
from procrun.settings import ProcessSettings

log = structlog.get_logger()

KILL_RETRY_MAX_SECONDS = 5.0

Deliver = Callable[[PlannedStep], object]


def deliver(name: str, pid: int, step: PlannedStep, shell_leads: bool = False) -> signals.Delivery:
    """Send one step's signal to `pid` (the leader, or its group), and log what happened. While
    the shell of a compound command still leads (`migrate && exec gunicorn`, during migrate), a
    signal for the leader goes to the step it runs instead: the shell, signalled, would die at
    once, and its reaping would SIGKILL the step with the rest of the group."""
    if step.target is Target.LEADER and shell_leads and signals.runs_shell(pid):
        steps = list_children(pid)
        for child in steps:
            signals.send_signal(child, step.signal)
        if steps:
            log.info("signal.sent", process=name, pid=steps, signal=step.signal.name, target="step")
            return signals.Delivery.DELIVERED
    if step.target is Target.GROUP:
        outcome = signals.send_group_signal(pid, step.signal)
    else:
        outcome = signals.send_signal(pid, step.signal)
    fields = {"process": name, "pid": pid, "signal": step.signal.name, "target": str(step.target)}
    match outcome:
        case signals.Delivery.DENIED:
            hint = "the process runs as another user; procrun needs CAP_KILL or the same uid"
            log.error("signal.denied", **fields, hint=hint)
        case signals.Delivery.DELIVERED:
            log.info("signal.sent", **fields)
        case signals.Delivery.GONE:
            log.debug("signal.gone", **fields)
    return outcome


class StopSequence:
    def __init__(
        self,
        name: str,
        settings: ProcessSettings,
        plan: StopPlan,
        clock: Clock,
        deliver: Deliver,
        exited: asyncio.Future[int],
    ) -> None:
        self._name = name
        self._settings = settings
        self._plan = plan
        self._clock = clock
        self._deliver = deliver
        self._exited = exited
        self._replanned: asyncio.Future[None] | None = None

    @property
    def plan(self) -> StopPlan:
        return self._plan

    def cap(self, deadline: float) -> None:
        self._replan(cap_stop(self._settings, self._plan, deadline))

    def force(self, kill_after: float) -> StopPlan:
        self._replan(force_stop(self._plan, self._clock.now(), kill_after))
        return self._plan

    def _replan(self, plan: StopPlan) -> None:
        if plan == self._plan:
            return
        self._plan = plan
        kill_in = round(max(plan.kill_at - self._clock.now(), 0.0), 3)
        log.info("stop.replanned", process=self._name, kill_in=kill_in)
        if self._replanned is not None and not self._replanned.done():
            self._replanned.set_result(None)

    async def run(self) -> None:
        """Until the child has exited. If the kill is denied, keep trying: a stop that cannot
        kill is never counted as done."""
        loop = asyncio.get_running_loop()
        while (step := self._plan.next) is not None:
            wake = self._replanned = loop.create_future()
            self._exited.add_done_callback(functools.partial(_complete, wake))
            if await wait_until(self._clock, wake, step.at):
                if self._exited.done():
                    return
                continue  # re-planned: look at the new plan
            self._plan = self._plan.after_delivery()
            self._deliver(step)
        retry = 0.5
        while not await wait_until(self._clock, self._exited, self._clock.now() + retry):
            self._deliver(PlannedStep(0.0, signal.SIGKILL, Target.GROUP))
            retry = min(retry * 2, KILL_RETRY_MAX_SECONDS)


def describe_pending(plan: StopPlan, now: float) -> str:
    """`SIGQUIT in 280 s, SIGKILL in 290 s`: what the stop has still to send, and when."""
    steps = plan.steps[plan.delivered :]
    told = ", ".join(f"{s.signal.name} in {max(s.at - now, 0.0):.0f} s" for s in steps)
    return told or "SIGKILL sent, waiting for the exit"


def _complete(future: asyncio.Future[None], _: object) -> None:
    if not future.done():
        future.set_result(None)

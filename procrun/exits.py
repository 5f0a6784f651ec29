"""After a child has exited (and its output is drained): stopped as asked, finished, restarted after
a backoff, or given up. The rules are lifecycle.py's pure functions; this applies them to the
process and logs what happened. A stop procrun began because a probe failed ends as a failure.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from procrun.clock import Clock
from procrun.crashloop import CrashLoop
from procrun.lifecycle import (
    ExitDecision,
    Finish,
    GiveUp,
    ProcessState,
    Restart,
    decide_after_exit,
    decide_after_failure,
    exit_was_wanted,
)
from procrun.outcomes import describe_returncode, describe_stopped
from procrun.process import ManagedProcess

log = structlog.get_logger()


def settle_exit(
    process: ManagedProcess,
    returncode: int,
    shutting_down: bool,
    clock: Clock,
    crashes: CrashLoop,
    restart_due: Callable[[], None],
) -> ExitDecision | None:
    """Settle `process` after its exit; the restart decision made, or None for a stop or an
    exit during a shutdown. `restart_due` is called when a backoff runs out."""
    outcome = describe_returncode(returncode)
    failed_stop = process.failed_stop
    if process.state is ProcessState.STOPPING and (not failed_stop or shutting_down):
        crashes.exited(process, crashed=False)
        outcome = describe_stopped(process.spec.settings, returncode)
        process.finish_stop()
        log.info("process.stopped", process=process.name, returncode=returncode, how=outcome)
        return None
    if shutting_down:
        # It ended on its own while everything is stopping: nothing to restart.
        crashes.exited(process, crashed=False)
        process.finish()
        log.info("process.exited", process=process.name, returncode=returncode, how=outcome)
        return None
    settings = process.spec.settings
    now = clock.now()
    failures = process.record_exit(
        now, failed=failed_stop or not exit_was_wanted(settings, returncode)
    )
    if failed_stop:
        decision = decide_after_failure(settings, failures)
        outcome = f"{describe_stopped(settings, returncode)} after {process.record.reason}"
    else:
        started = process.record.started_at
        uptime = None if started is None else now - started
        decision = decide_after_exit(settings, returncode, failures, uptime)
    crashes.exited(process, crashed=isinstance(decision, Restart | GiveUp))
    log_exit = log.info if returncode == 0 and not failed_stop else log.warning
    log_exit("process.exited", process=process.name, returncode=returncode, how=outcome)
    match decision:
        case Finish():
            process.finish()
        case Restart(delay_seconds=delay):
            crashes.restarting(process)
            process.schedule_restart(delay, restart_due)
            log.info("process.restarting", process=process.name, delay=round(delay, 3))
        case GiveUp(reason=reason):
            process.give_up(reason)
            log.error("process.gave_up", process=process.name, reason=reason)
    return decision

"""How an exit reads: its description in the log and status, and procrun's own exit code."""

from __future__ import annotations

import signal
from collections.abc import Sequence

from procrun.errors import EXIT_OK, EXIT_STOP_DENIED
from procrun.lifecycle import ProcessState, RunRecord, StopOutcome
from procrun.settings import ProcessSettings


def exit_code(cause: RunRecord | None, processes: Sequence[tuple[ProcessState, RunRecord]]) -> int:
    """The code `procrun start` exits with (README "Exit codes"): the status of the process whose
    exit stopped procrun; else 1 if a kill was denied; else the status of a process that had to
    be SIGKILLed, or that gave up; else 0."""
    if cause is not None:
        return exit_status(cause.last_returncode or 1)
    if any(record.stop_outcome is StopOutcome.DENIED for _, record in processes):
        return EXIT_STOP_DENIED
    for _, record in processes:
        if record.stop_outcome is StopOutcome.KILLED and record.last_returncode is not None:
            return exit_status(record.last_returncode)
    for state, record in processes:
        if state is ProcessState.FATAL and record.last_returncode is not None:
            return exit_status(record.last_returncode)
    return EXIT_OK


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def describe_stopped(settings: ProcessSettings, returncode: int) -> str:
    """How a process asked to stop ended: `stopped by SIGTERM` when a signal it was sent did it,
    which is a clean stop and not a kill."""
    if returncode < 0 and -returncode in (settings.stop_signal, settings.second_signal):
        return f"stopped by {signal_name(-returncode)}"
    return describe_returncode(returncode)


def describe_returncode(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal_name(-returncode)}"
    return f"exited with code {returncode}"


def exit_status(returncode: int) -> int:
    """A Popen-style return code (negative for 'killed by signal N') as a shell exit status."""
    return 128 - returncode if returncode < 0 else returncode

"""Everything the supervisor reacts to, as small typed messages on its one queue.

Processes are named by instance (`web.1`), not held: an event is plain data that any part of
procrun can post without importing the process or supervisor modules. The events about one
process share ProcessEvent's `process` field; those that add no field need no decorator.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessEvent:
    process: str
    """The instance it is about: `web.1`."""


@dataclass(frozen=True)
class ProcessExited(ProcessEvent):
    """A child has exited and its output has been drained (or the drain bound passed)."""

    returncode: int


class ProcessStarted(ProcessEvent):
    """A child has stayed up for min_uptime."""


@dataclass(frozen=True)
class ProcessReady(ProcessEvent):
    """Its readiness probe passed (procrun/health/)."""

    probe: str
    """What passed, as Probe.describe() says it: `tcp 127.0.0.1:5000`."""


@dataclass(frozen=True)
class ProbeFailed(ProcessEvent):
    """A failed start (`ready_timeout` ran out while STARTING: event `probe.timed_out`), or a
    liveness probe that failed `failures` times in a row while RUNNING (`liveness.failed`):
    the process is stopped and restarted as a failure."""

    reason: str
    liveness: bool = False


@dataclass(frozen=True)
class StatusReported(ProcessEvent):
    """An sd_notify `STATUS=` line from the process, shown by `procrun status`."""

    text: str


class RestartDue(ProcessEvent):
    """A crashed process's backoff has run out."""


@dataclass(frozen=True)
class MemoryExceeded(ProcessEvent):
    """The memory watchdog wants a graceful restart."""

    reason: str


@dataclass(frozen=True)
class SignalReceived:
    signal: signal.Signals


@dataclass(frozen=True)
class ShutdownRequested:
    reason: str
    force: bool = False
    """As a second Ctrl-C: each stop moves to its last signal now (lifecycle.force_stop)."""


Event = (
    ProcessExited
    | ProcessStarted
    | ProcessReady
    | ProbeFailed
    | StatusReported
    | RestartDue
    | MemoryExceeded
    | SignalReceived
    | ShutdownRequested
)

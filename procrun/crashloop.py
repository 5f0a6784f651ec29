"""Repeated identical crashes, said once. A process that crashes again and again within seconds
(an import error, a missing setting) prints the same traceback on every run. From its third run
procrun keeps a restarted run's lines back while it is starting (the second run is shown as it
comes, and copied), and when that run crashes with the same output as the one before, it writes
one line instead: `exited 3 times in 2.1 s
with the same output, last line: ...`. Output that differs, or a run that comes up, is written
in full. Nothing is lost: every line is in `procrun logs`, held or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from procrun.clock import Clock
from procrun.output.relay import Relay
from procrun.process import ManagedProcess
from procrun.quoting import excerpt

log = structlog.get_logger()


@dataclass
class _Streak:
    output: bytes  # what the last crashed run wrote
    first_at: float
    crashes: int
    said: bool = False


class CrashLoop:
    def __init__(self, relay: Relay, clock: Clock) -> None:
        self._relay = relay
        self._clock = clock
        self._streaks: dict[str, _Streak] = {}

    def restarting(self, process: ManagedProcess) -> None:
        """A crashed process is about to run again: copy what it says while it starts, and once
        it has crashed twice keep that back too, to be compared with the run before."""
        streak = self._streaks.get(process.name)
        self._relay.hold(process.name, show=streak is None or streak.crashes < 2)

    def came_up(self, process: ManagedProcess) -> None:
        """It stayed up for min_uptime: write what it said, and the streak is over."""
        self._release(process)
        self._end(process)

    def exited(self, process: ManagedProcess, *, crashed: bool) -> None:
        """Before its exit is logged: write what the run said, unless it crashed with the very
        output of the crash before, which is said in one line instead."""
        streak = self._streaks.get(process.name)
        kept_back = not self._relay.was_shown(process.name)
        held = self._relay.release(process.name)
        if crashed and kept_back and held and streak is not None and held == streak.output:
            streak.crashes += 1
            if not streak.said:
                streak.said = True
                last = held.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
                log.warning(
                    "process.crash_repeated",
                    process=process.name,
                    message=f"exited {streak.crashes} times in "
                    f"{self._clock.now() - streak.first_at:.1f} s with the same output, last "
                    f"line: {excerpt(last)}; not repeated while it stays the same",
                )
            return
        if kept_back:
            self._relay.write_held(process.name, process.spec.kind, held or b"")
        if not crashed:
            self._end(process)
            return
        first_at = streak.first_at if streak is not None else self._clock.now()
        crashes = streak.crashes + 1 if streak is not None else 1
        self._streaks[process.name] = _Streak(held or b"", first_at, crashes)

    def _release(self, process: ManagedProcess) -> None:
        kept_back = not self._relay.was_shown(process.name)
        held = self._relay.release(process.name)
        if kept_back:
            self._relay.write_held(process.name, process.spec.kind, held or b"")

    def _end(self, process: ManagedProcess) -> None:
        streak = self._streaks.pop(process.name, None)
        if streak is not None and streak.said:
            log.info("process.crash_streak_ended", process=process.name, crashes=streak.crashes)

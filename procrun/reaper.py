"""Reaping: collecting the exit of every child procrun spawned, and of orphans it adopted.

procrun owns all waiting. It never uses asyncio's child watchers (whose blanket or per-thread
waits race with ours); on every SIGCHLD it polls each pid it spawned with ``waitid(WNOWAIT)``. An
exited leader is still a zombie at that point, so its pid, and with it the process-group id, cannot
be reused: procrun SIGKILLs whatever is left of the group, and only then reaps the leader. Orphans
re-parented to procrun (as PID 1, or as a child subreaper on Linux) are found through
``/proc/self/task/*/children`` and reaped by pid, so no exit status of an owned child is stolen.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Awaitable, Callable

import structlog

from procrun.clock import Clock
from procrun.signals import send_group_signal, send_signal
from procrun.undertaker import Undertaker

ORPHAN_GRACE_SECONDS = 2.0
Wait = Callable[[float, Callable[[], bool]], Awaitable[bool]]

log = structlog.get_logger()

ExitCallback = Callable[[int], None]


class Reaper:
    """Collects the exit of every child procrun spawned, and of orphans it adopted."""

    def __init__(self, *, adopt_orphans: bool, undertaker: Undertaker | None = None) -> None:
        self.adopt_orphans = adopt_orphans
        self._owned: dict[int, ExitCallback] = {}
        self._undertaker = undertaker
        if undertaker is not None:
            self._owned[undertaker.pid] = undertaker.exited  # ours to reap, not an orphan

    def register(self, pid: int, on_exit: ExitCallback) -> None:
        """`pid` leads its own process group; its exit is reported to `on_exit`."""
        self._owned[pid] = on_exit
        if self._undertaker is not None:
            self._undertaker.track(pid)

    def reap(self) -> None:
        """Handle one SIGCHLD (signals coalesce, so look at every owned pid)."""
        for pid in list(self._owned):
            if not _has_exited(pid):
                continue
            # Still a zombie, so the group id cannot have been reused: kill the stragglers.
            send_group_signal(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            if self._undertaker is not None:
                self._undertaker.forget(pid)
            self._owned.pop(pid)(os.waitstatus_to_exitcode(status))
        if self.adopt_orphans:
            self._reap_orphans()

    def _reap_orphans(self) -> None:
        for pid in self.orphans():
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if reaped:
                log.debug("orphan.reaped", pid=pid, returncode=os.waitstatus_to_exitcode(status))

    def signal_orphans(self, sig: signal.Signals) -> list[int]:
        """Send `sig` to every adopted orphan still alive (a zombie waits only for its reaping);
        the pids signalled."""
        orphans = [pid for pid in self.orphans() if not _is_zombie(pid)]
        if orphans:
            log.warning("orphans.signalled", pids=orphans, signal=sig.name)
        for pid in orphans:
            send_signal(pid, sig)
        return orphans

    async def stop_orphans(self, clock: Clock, deadline: float | None, wait: Wait) -> None:
        """Descendants that escaped their group (daemons) were adopted by procrun: TERM, then
        KILL after a short grace, by the shutdown's `deadline` like everything else. `wait`
        handles the supervisor's events for up to a time, until a condition holds."""
        if not self.signal_orphans(signal.SIGTERM):
            return
        grace = ORPHAN_GRACE_SECONDS
        if deadline is not None:
            grace = max(min(grace, deadline - clock.now()), 0.0)
        if await wait(grace, lambda: not self.orphans()):
            return
        self.signal_orphans(signal.SIGKILL)
        await wait(ORPHAN_GRACE_SECONDS, lambda: not self.orphans())

    def orphans(self) -> list[int]:
        """Children of procrun it did not spawn: descendants re-parented to it."""
        return [pid for pid in list_children() if pid not in self._owned]


def _has_exited(pid: int) -> bool:
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return info is not None and info.si_pid == pid


def list_children(pid: int | None = None) -> list[int]:
    """Direct children of `pid` (default: this process), from Linux /proc: empty elsewhere (where
    nothing is adopted) and for a pid that is gone."""
    # os.listdir and open, not Path.glob: status lists a thousand trees with this (a third of
    # the time went into glob's pattern matching).
    tasks = f"/proc/{pid or 'self'}/task"
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(tasks):
            with contextlib.suppress(OSError), open(f"{tasks}/{task}/children", "rb") as file:
                children.extend(map(int, file.read().split()))
    return children


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False  # not Linux, or gone: nothing to tell

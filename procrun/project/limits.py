"""What a formation asks of the machine's limits, checked before anything is spawned.

File descriptors (RLIMIT_NOFILE, per process, so every one procrun holds counts). For each child
procrun keeps the read end of its output pipe (process.py), plus its notify socket when it is
ready by notify or alive by watchdog (health/notifysocket.py), plus one while a polled probe
runs (a tcp or http socket, an exec probe's pipe: health/probes.py). Its own, from start: stdin,
stdout and stderr, the event loop's epoll and wake-up socket pair, the signal wake-up pair
(signals.py), its own copy of a stdout pipe (output/sink.py), the undertaker's pipe, the control
socket, the sd_notify socket. On top, for a moment: a spawn's four (the pipe's write end,
/dev/null for stdin, subprocess's exec-error pipe), a control client's connection each, status's
/proc reads, --watch's inotify. Linux pipes past the user's pipe quota still work, only smaller.

Processes (RLIMIT_NPROC, every process and thread of the user, root exempt; the cgroup's
pids.max, which `docker run --pids-limit` and Kubernetes set): each child is at least one, a
shell that leads a compound command or a running exec probe one more, and the undertaker one.

This module counts and judges, purely; machinelimits.py reads the machine's limits and, at
start, raises a soft limit that is too low where the hard limit allows, as far as needed with
room to spare: children inherit the soft limit, and a huge one slows programs that close every
possible descriptor, or breaks those that use select().
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from procrun.settings import POLLED_PROBES, ProbeKind, ProcessSpec

OWN_FDS = 12
"""stdio (3), epoll (1), the loop's wake-up pair (2), the signal wake-up pair (2), stdout's copy,
the undertaker's pipe, the control socket, sd_notify (1 each)."""
PASSING_FDS = 4 + 8 + 2 + 3
"""A spawn (4), control clients at once (8), status's /proc reads (2), --watch's inotify (3)."""
UNDERTAKER_PIDS = 1
SPARE_FACTOR = 2
"""A raised soft limit leaves this much room over the need: `procrun scale`, clients."""
PIPE_PAGE_BYTES = 4096
DEFAULT_PIPE_BYTES = 16 * PIPE_PAGE_BYTES  # Linux's default pipe capacity


# NamedTuples, not dataclasses: every start imports this module, and a frozen dataclass costs
# about a millisecond to define.
class Needs(NamedTuple):
    processes: int
    child_fds: int
    pids: int

    @property
    def fds(self) -> int:
        return self.child_fds + OWN_FDS + PASSING_FDS


def _notifies(spec: ProcessSpec) -> bool:
    s = spec.settings
    ready = s.ready is not None and s.ready.kind is ProbeKind.NOTIFY
    return ready or (s.alive is not None and s.alive.probe.kind is ProbeKind.WATCHDOG)


def _polls(spec: ProcessSpec, kinds: frozenset[ProbeKind] = POLLED_PROBES) -> bool:
    s = spec.settings
    return (s.ready is not None and s.ready.kind in kinds) or (
        s.alive is not None and s.alive.probe.kind in kinds
    )


def fds_of(spec: ProcessSpec) -> int:
    """At most open at once for one child (readiness and liveness probes never overlap)."""
    return 1 + _notifies(spec) + _polls(spec)


def pids_of(spec: ProcessSpec) -> int:
    """At least, for one child: its own processes beyond these are its business."""
    return 1 + spec.shell_leads + _polls(spec, frozenset({ProbeKind.EXEC}))


def needs_of(release: ProcessSpec | None, processes: Sequence[ProcessSpec]) -> Needs:
    """The release runs alone, before the others: whichever needs more."""
    fds = sum(map(fds_of, processes))
    pids = sum(map(pids_of, processes))
    if release is not None:
        fds, pids = max(fds, fds_of(release)), max(pids, pids_of(release))
    return Needs(len(processes), fds, pids + UNDERTAKER_PIDS)


# --- judging: pure -------------------------------------------------------------------------------


class Limit(NamedTuple):
    soft: float  # math.inf: unlimited
    hard: float
    used: int = 0  # already taken out of it (RLIMIT_NPROC: the user's other processes)

    def room(self, soft: float | None = None) -> float:
        return (self.soft if soft is None else soft) - self.used


class Plan(NamedTuple):
    need: int
    limit: Limit
    raise_to: int | None = None  # the new soft limit, when the present one is too low

    @property
    def short(self) -> bool:
        return self.limit.room(self.limit.hard) < self.need


def plan(need: int, limit: Limit, *, to_hard: bool = False) -> Plan:
    """Enough as it is, or a raise of the soft limit (to the hard one, or twice the need within
    it), or short even at the hard limit."""
    if need <= limit.room() or limit.room(limit.hard) < need:
        return Plan(need, limit)
    wanted = limit.hard if to_hard else min(limit.hard, limit.used + SPARE_FACTOR * need)
    return Plan(need, limit, int(wanted))


def shown(value: float) -> str:
    return "unlimited" if math.isinf(value) else f"{value:,.0f}"


def describe_fds(needs: Needs, p: Plan) -> str:
    """For `procrun check`: the need against `ulimit -n`, and what start will do about it."""
    head = (
        f"open files: about {p.need:,} at most ({needs.processes:,} processes: "
        f"{needs.child_fds:,}; procrun itself: {p.need - needs.child_fds:,}); "
        f"ulimit -n {shown(p.limit.soft)}, hard {shown(p.limit.hard)}"
    )
    if p.short:
        return f"{head}: too few, start will refuse; {_FD_FIX} or {RUN_FEWER}"
    if p.raise_to is not None:
        return f"{head}: start raises the soft limit to {p.raise_to:,}"
    return f"{head}: enough"


_FD_FIX = "raise the hard limit (docker run --ulimit nofile=N, LimitNOFILE=N)"
RUN_FEWER = "run fewer (-c)"


def fd_error(needs: Needs, p: Plan, fewer: str = RUN_FEWER) -> str:
    return (
        f"{needs.processes:,} processes need about {p.need:,} open files, more than the hard "
        f"limit allows (ulimit -Hn {shown(p.limit.hard)}); {_FD_FIX} or {fewer}"
    )


def pid_error(needs: Needs, what: str, room: float) -> str:
    return (
        f"{needs.processes:,} processes need at least {needs.pids:,} pids, and {what} leaves "
        f"room for {shown(max(room, 0))}; raise it or run fewer (-c)"
    )


def pipe_note(needs: Needs, quota_pages: int) -> str | None:
    """Past the user's pipe quota Linux still makes pipes, of a page or two: a child writing
    more at once then waits for procrun to read. Counted at the default size (procrun grows a
    few pipes, within the quota)."""
    wanted = needs.processes * DEFAULT_PIPE_BYTES
    if quota_pages <= 0 or wanted <= quota_pages * PIPE_PAGE_BYTES:
        return None
    return (
        f"pipes: the output pipes take at least {wanted / 2**20:,.0f} MiB, over this user's pipe "
        f"quota (fs.pipe-user-pages-soft, {quota_pages * PIPE_PAGE_BYTES / 2**20:,.0f} MiB for "
        "all its pipes): later pipes hold a page or two, so their children wait for procrun "
        "more often"
    )


def verdict(short: bool) -> str:
    return ": too few, start will refuse" if short else ": enough"

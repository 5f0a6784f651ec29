"""The machine's limits, read for `procrun check` and applied at `procrun start`: RLIMIT_NOFILE
and RLIMIT_NPROC (raised when the hard limit allows), the cgroup's pids.max, the user's pipe
quota. What a formation needs, and the judging, are limits.py's."""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from procrun.errors import ProcrunError
from procrun.project.limits import (
    RUN_FEWER,
    Limit,
    Needs,
    Plan,
    describe_fds,
    fd_error,
    needs_of,
    pid_error,
    pipe_note,
    plan,
    shown,
    verdict,
)
from procrun.settings import ProcessSpec


def _limit(which: int, used: int = 0) -> Limit:
    soft, hard = (
        math.inf if value == resource.RLIM_INFINITY else value
        for value in resource.getrlimit(which)
    )
    return Limit(soft, hard, used)


def _tasks_of(uid: int) -> int:
    """The user's processes and threads now, which RLIMIT_NPROC counts (by /proc owner)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"{entry.path}/task"))
            except OSError:
                continue  # gone meanwhile
    return count


def _proc_limit() -> Limit | None:
    """RLIMIT_NPROC for a user it binds (not root), None where it does not apply."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if os.geteuid() == 0 or soft == resource.RLIM_INFINITY or not Path("/proc/self").is_dir():
        return None
    return _limit(resource.RLIMIT_NPROC, _tasks_of(os.getuid()))


def cgroup_pid_room(
    cgroups: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")
) -> tuple[int, Path] | None:
    """The fewest pids this process's cgroup or any above it can still start, and whose limit
    that is; None without a pids limit (or outside Linux)."""
    try:
        lines = cgroups.read_text().splitlines()
    except OSError:
        return None
    tightest: tuple[int, Path] | None = None
    for line in lines:
        hierarchy, controllers, path = [*line.split(":", 2), "", ""][:3]
        if hierarchy == "0" and not controllers:
            base = root  # cgroup v2
        elif "pids" in controllers.split(","):
            base = root / "pids"  # v1
        else:
            continue
        directory = base / path.lstrip("/")
        while True:
            try:
                maximum = (directory / "pids.max").read_text().strip()
                current = int((directory / "pids.current").read_text())
            except (OSError, ValueError):
                maximum = "max"
            if maximum.isdigit() and (tightest is None or int(maximum) - current < tightest[0]):
                tightest = (int(maximum) - current, directory / "pids.max")
            if directory == base or directory.parent == directory:
                break
            directory = directory.parent
    return tightest


class Raised(NamedTuple):  # not a dataclass: see limits.py
    limit: str
    was: int
    now: int
    needed: int


def _raise(which: int, p: Plan) -> None:
    resource.setrlimit(which, (p.raise_to or 0, resource.getrlimit(which)[1]))


def apply_limits(release: ProcessSpec | None, processes: Sequence[ProcessSpec]) -> list[Raised]:
    """At start: raise what is too low where the hard limit allows, or refuse in one line
    (ProcrunError) before anything is spawned; the raises made."""
    needs = needs_of(release, processes)
    raised = apply_fd_limit(needs)
    nproc = _proc_limit()
    if nproc is not None:
        pids = plan(needs.pids, nproc, to_hard=True)
        if pids.short:
            what = f"ulimit -u {shown(nproc.hard)} (hard) with {nproc.used:,} in use by this user"
            raise ProcrunError(pid_error(needs, what, nproc.room(nproc.hard)))
        if pids.raise_to is not None:
            _raise(resource.RLIMIT_NPROC, pids)
            raised.append(Raised("processes", int(nproc.soft), pids.raise_to, pids.need))
    room = cgroup_pid_room()
    if room is not None and room[0] < needs.pids:
        raise ProcrunError(pid_error(needs, f"the cgroup's {room[1]}", room[0]))
    return raised


def apply_fd_limit(needs: Needs, fewer: str = RUN_FEWER) -> list[Raised]:
    """The open files of a formation (at start, or after `procrun scale`): the soft limit
    raised where the hard limit allows (the raise, if one was made), else ProcrunError. Pids
    are not judged for a scale: those running are already counted in the limits' use."""
    fds = plan(needs.fds, _limit(resource.RLIMIT_NOFILE))
    if fds.short:
        raise ProcrunError(fd_error(needs, fds, fewer))
    if fds.raise_to is None:
        return []
    _raise(resource.RLIMIT_NOFILE, fds)
    return [Raised("open files", int(fds.limit.soft), fds.raise_to, fds.need)]


def describe_limits(release: ProcessSpec | None, processes: Sequence[ProcessSpec]) -> list[str]:
    """`procrun check`'s lines: open files against ulimit -n, pids against what limits them,
    and the pipe quota when the formation outgrows it."""
    needs = needs_of(release, processes)
    lines = [describe_fds(needs, plan(needs.fds, _limit(resource.RLIMIT_NOFILE)))]
    rooms: list[str] = []
    nproc = _proc_limit()
    if nproc is not None:
        p = plan(needs.pids, nproc, to_hard=True)
        rooms.append(f"ulimit -u {shown(nproc.soft)}, {nproc.used:,} in use by this user")
        rooms[-1] += f": start raises it to {p.raise_to:,}" if p.raise_to else verdict(p.short)
    cgroup = cgroup_pid_room()
    if cgroup is not None:
        rooms.append(f"{cgroup[1]} leaves room for {cgroup[0]:,}{verdict(cgroup[0] < needs.pids)}")
    lines.append(
        f"processes: at least {needs.pids:,} (the undertaker included); "
        + ("; ".join(rooms) if rooms else "no limit applies")
    )
    quota = _pipe_quota()
    if quota is not None and (note := pipe_note(needs, quota)):
        lines.append(note)
    return lines


def _pipe_quota() -> int | None:
    """fs.pipe-user-pages-soft, for a user it binds (root is exempt)."""
    if os.geteuid() == 0:
        return None
    try:
        return int(Path("/proc/sys/fs/pipe-user-pages-soft").read_text())
    except (OSError, ValueError):
        return None

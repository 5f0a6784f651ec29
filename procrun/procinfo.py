"""Process-tree metrics. The one module that imports psutil, and only when metrics are asked for,
so neither `procrun start` without a memory limit nor the status client pays for the import.

A tree is found from its root down. On Linux each process's children are listed in
/proc/<pid>/task/*/children, so the cost follows the size of the trees asked for, and each member
is read from its /proc/<pid>/stat and statm (start time, CPU time, RSS: two reads, where psutil
makes five, and psutil is not imported at all; `procrun status` over 1,000 processes spent
most of its time there). Elsewhere psutil reads the process table once per call, turned into a
parent -> children map; walking each tree with psutil's `children(recursive=True)` would instead
read every /proc/<pid>/stat on the machine once per tree (200 supervised processes, 200 scans)."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from procrun.reaper import list_children


@dataclass(frozen=True)
class TreeUsage:
    rss_bytes: int
    cpu_percent: float
    processes: int


ChildLister = Callable[[int], Sequence[int]]
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _Seen(NamedTuple):
    """A member as last sampled from /proc: its start time (which, with the pid, says it is the
    same process), its CPU time then, and when that was (both in seconds since boot)."""

    started: float
    cpu_seconds: float
    at: float


def _read_stat(pid: int) -> tuple[float, float, int] | None:
    """Start time (seconds since boot), CPU time (seconds), RSS bytes; None once `pid` is
    gone. RSS from statm, as psutil and VmRSS have it: stat's own figure is the kernel's
    per-CPU estimate, some pages off."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat, open(f"/proc/{pid}/statm", "rb") as statm:
            data, pages = stat.read(), statm.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()  # the name may hold spaces and parentheses
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND  # utime + stime
    return int(fields[19]) / _TICKS_PER_SECOND, cpu, int(pages.split()[1]) * _PAGE_BYTES


def _proc_children_available() -> bool:
    return Path("/proc/self/task").is_dir() and any(Path("/proc/self/task").glob("*/children"))


def _scanned_children(psutil: Any) -> ChildLister:
    """A parent -> children map from one pass over the process table (any platform)."""
    children: defaultdict[int, list[int]] = defaultdict(list)
    # ppid() under oneshot() rather than process_iter(attrs=...): that would store `.info` on
    # psutil's shared objects, which another sampler's thread may be doing at the same time.
    for process in psutil.process_iter():
        try:
            with process.oneshot():
                children[process.ppid()].append(process.pid)
        except psutil.Error:
            continue  # exited since the listing
    return lambda pid: children.get(pid, ())


def _tree(root: int, children: ChildLister) -> Iterator[int]:
    """`root` and all its descendants. `seen` guards against a cycle that pid reuse during the
    (non-atomic) listing could make."""
    seen = {root}
    stack = [root]
    while stack:
        pid = stack.pop()
        yield pid
        for child in children(pid):
            if child not in seen:
                seen.add(child)
                stack.append(child)


class TreeSampler:
    """Samples processes and all their descendants. What each member was at the last sample is
    kept (psutil.Process objects elsewhere), because CPU% is measured between two samples of the
    same process; a process seen for the first time reports its average since it started.

    Safe to call from a worker thread: one sample at a time per sampler."""

    def __init__(self, *, proc_children: bool | None = None) -> None:
        self._trees: dict[int, dict[int, Any]] = {}  # root pid -> its members' psutil objects
        self._seen: dict[int, dict[int, _Seen]] = {}  # the same, read from /proc (Linux)
        self._lock = threading.Lock()
        self._proc_children = _proc_children_available() if proc_children is None else proc_children

    def sample_many(self, pids: Sequence[int]) -> dict[int, TreeUsage | None]:
        """Usage of each tree rooted at one of `pids`; None for a root that is gone."""
        if not pids:
            return {}
        if self._proc_children:
            with self._lock:
                return self._sample_from_proc(pids)
        import psutil  # lazily: see the module docstring

        with self._lock:
            children = list_children if self._proc_children else _scanned_children(psutil)
            usage = {pid: self._sample_tree(psutil, children, pid) for pid in pids}
            # A restarted process is never asked for by its old pid again: drop what has gone.
            for root in [r for r in self._trees if r not in usage]:
                if not _running(psutil, self._trees[root].get(root)):
                    del self._trees[root]
            return usage

    def _sample_from_proc(self, pids: Sequence[int]) -> dict[int, TreeUsage | None]:
        now = time.clock_gettime(time.CLOCK_BOOTTIME)  # the clock of /proc's start times
        usage = {pid: self._proc_tree(pid, now) for pid in pids}
        for root in [r for r in self._seen if r not in usage]:
            root_seen, stat = self._seen[root].get(root), _read_stat(root)
            if root_seen is None or stat is None or stat[0] != root_seen.started:
                del self._seen[root]  # gone, or its pid reused
        return usage

    def _proc_tree(self, pid: int, now: float) -> TreeUsage | None:
        known = self._seen.get(pid, {})
        rss = 0
        cpu = 0.0
        alive: dict[int, _Seen] = {}
        for member_pid in _tree(pid, list_children):
            stat = _read_stat(member_pid)
            if stat is None:
                continue  # exited between the listing and its reading
            started, seconds, member_rss = stat
            before = known.get(member_pid)
            if before is not None and before.started == started:
                elapsed = now - before.at
                cpu += 100.0 * (seconds - before.cpu_seconds) / elapsed if elapsed > 0 else 0.0
            else:  # first seen: its average since it started, as psutil reports it
                cpu += 100.0 * seconds / max(now - started, 1e-3)
            rss += member_rss
            alive[member_pid] = _Seen(started, seconds, now)
        if pid not in alive:  # the root is gone
            self._seen.pop(pid, None)
            return None
        self._seen[pid] = alive
        return TreeUsage(rss, round(cpu, 1), len(alive))

    def _sample_tree(self, psutil: Any, children: ChildLister, pid: int) -> TreeUsage | None:
        known = self._trees.get(pid, {})
        rss = 0
        cpu = 0.0
        alive: dict[int, Any] = {}
        for member_pid in _tree(pid, children):
            member: Any = known.get(member_pid)
            try:
                if _running(psutil, member):
                    cpu += member.cpu_percent(interval=None)
                else:
                    member = psutil.Process(member_pid)
                    member.cpu_percent(interval=None)  # start the next interval
                    times = member.cpu_times()
                    age = max(time.time() - member.create_time(), 1e-3)
                    cpu += 100.0 * (times.user + times.system) / age
                rss += member.memory_info().rss
            except psutil.Error:
                continue  # exited (or a zombie) between the listing and sampling
            alive[member_pid] = member
        if pid not in alive:  # the root is gone
            self._trees.pop(pid, None)
            return None
        self._trees[pid] = alive
        return TreeUsage(rss, round(cpu, 1), len(alive))


def _running(psutil: Any, process: Any) -> bool:
    """The very process `process` was made for (same pid and start time) is still there."""
    if process is None:
        return False
    try:
        return bool(process.is_running())
    except psutil.Error:
        return False

"""Process-tree metrics. The one module that imports psutil, and only when metrics are asked for,
so neither `procrun start` without a memory limit nor the status client pays for the import.

A tree is found from its root down. On Linux each process's children are listed in
/proc/<pid>/task/*/children, so the cost follows the size of the trees asked for. Elsewhere the
process table is read once per call and turned into a parent -> children map; walking each tree
with psutil's `children(recursive=True)` would instead read every /proc/<pid>/stat on the machine
once per tree (200 supervised processes, 200 full scans)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procrun.reaper import list_children


@dataclass(frozen=True)
class TreeUsage:
    rss_bytes: int
    cpu_percent: float
    processes: int


ChildLister = Callable[[int], Sequence[int]]


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
    """Samples processes and all their descendants. psutil.Process objects are kept between samples
    because CPU% is measured between two calls on the same object; a process seen for the first
    time reports its average since it started.

    Safe to call from a worker thread: one sample at a time per sampler."""

    def __init__(self, *, proc_children: bool | None = None) -> None:
        self._trees: dict[int, dict[int, Any]] = {}  # root pid -> its members' psutil objects
        self._lock = threading.Lock()
        self._proc_children = _proc_children_available() if proc_children is None else proc_children

    def sample_many(self, pids: Sequence[int]) -> dict[int, TreeUsage | None]:
        """Usage of each tree rooted at one of `pids`; None for a root that is gone."""
        if not pids:
            return {}
        import psutil  # lazily: see the module docstring

        with self._lock:
            children = list_children if self._proc_children else _scanned_children(psutil)
            usage = {pid: self._sample_tree(psutil, children, pid) for pid in pids}
            # A restarted process is never asked for by its old pid again: drop what has gone.
            for root in [r for r in self._trees if r not in usage]:
                if not _running(psutil, self._trees[root].get(root)):
                    del self._trees[root]
            return usage

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

"""Process-tree metrics. The one module that imports psutil, and only when metrics are asked for,
so neither `procrun start` without a memory limit nor the status client pays for the import.

Every call reads the process table once, whatever the number of trees asked for: walking each
tree with `Process.children(recursive=True)` would read every /proc/<pid>/stat on the machine once
per tree (200 supervised processes, 200 full scans)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TreeUsage:
    rss_bytes: int
    cpu_percent: float
    processes: int


@dataclass(frozen=True)
class _ProcessTable:
    """One pass over the process table: every pid's psutil object (psutil's own, shared and cached
    by process_iter) and each parent pid's children."""

    listed: dict[int, Any]
    children: dict[int, list[int]]

    def tree(self, root: int) -> Iterator[int]:
        """`root` and all its descendants. `seen` guards against a cycle that pid reuse during the
        (non-atomic) scan could make."""
        seen = {root}
        stack = [root]
        while stack:
            pid = stack.pop()
            yield pid
            for child in self.children.get(pid, ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)


class TreeSampler:
    """Samples processes and all their descendants. psutil.Process objects are kept between samples
    because CPU% is measured between two calls on the same object; a process seen for the first
    time reports its average since it started. These objects are the sampler's own, not the shared
    ones process_iter hands out, so that two samplers never cut each other's CPU interval.

    Safe to call from a worker thread: one sample at a time per sampler."""

    def __init__(self) -> None:
        self._trees: dict[int, dict[int, Any]] = {}  # root pid -> its members' psutil objects
        self._lock = threading.Lock()

    def sample_many(self, pids: Sequence[int]) -> dict[int, TreeUsage | None]:
        """Usage of each tree rooted at one of `pids`; None for a root that is gone."""
        if not pids:
            return {}
        import psutil  # lazily: see the module docstring

        with self._lock:
            table = _read_process_table(psutil)
            # Drop the trees of roots that have gone, asked for or not: a restarted process is
            # never asked for by its old pid again.
            for gone in [root for root in self._trees if root not in table.listed]:
                del self._trees[gone]
            return {pid: self._sample_tree(psutil, table, pid) for pid in pids}

    def forget(self, pid: int) -> None:
        with self._lock:
            self._trees.pop(pid, None)

    def _sample_tree(self, psutil: Any, table: _ProcessTable, pid: int) -> TreeUsage | None:
        if pid not in table.listed:
            return None
        rss = 0
        cpu = 0.0
        known = self._trees.get(pid, {})
        alive: dict[int, Any] = {}
        for member_pid in table.tree(pid):
            listed = table.listed[member_pid]
            member = known.get(member_pid)
            try:
                if member is not None and member.create_time() == listed.create_time():
                    cpu += member.cpu_percent(interval=None)
                else:
                    member = psutil.Process(member_pid)
                    if member.create_time() != listed.create_time():
                        continue  # the pid was reused since the scan: not this tree's process
                    member.cpu_percent(interval=None)  # start the next interval
                    times = member.cpu_times()
                    age = max(time.time() - member.create_time(), 1e-3)
                    cpu += 100.0 * (times.user + times.system) / age
                rss += member.memory_info().rss
            except psutil.Error:
                continue  # exited between the scan and sampling
            alive[member_pid] = member
        self._trees[pid] = alive
        return TreeUsage(rss, round(cpu, 1), len(alive))


def _read_process_table(psutil: Any) -> _ProcessTable:
    listed: dict[int, Any] = {}
    children: defaultdict[int, list[int]] = defaultdict(list)
    # ppid() under oneshot() rather than process_iter(attrs=...): that would store `.info` on
    # psutil's shared objects, which another sampler's thread may be doing at the same time.
    for process in psutil.process_iter():
        try:
            with process.oneshot():
                parent = process.ppid()
        except psutil.Error:
            continue  # exited since the listing
        listed[process.pid] = process
        children[parent].append(process.pid)
    return _ProcessTable(listed, dict(children))

"""Process-tree metrics. The one module that imports psutil, and only when metrics are asked for,
so neither `procrun start` without a memory limit nor the status client pays for the import."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TreeUsage:
    rss_bytes: int
    cpu_percent: float
    processes: int


class TreeSampler:
    """Samples a process and all its descendants. psutil.Process objects are kept between samples
    because CPU% is measured between two calls on the same object; a process seen for the first
    time reports its average since it started."""

    def __init__(self) -> None:
        self._trees: dict[int, dict[int, Any]] = {}  # root pid -> its members' psutil objects

    def sample(self, pid: int) -> TreeUsage | None:
        import psutil  # lazily: see the module docstring

        try:
            root = psutil.Process(pid)
            members = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None
        rss = 0
        cpu = 0.0
        known = self._trees.get(pid, {})
        alive: dict[int, Any] = {}
        for member in members:
            cached = known.get(member.pid)
            try:
                if cached is not None and cached.create_time() == member.create_time():
                    member = cached
                    cpu += member.cpu_percent(interval=None)
                else:
                    member.cpu_percent(interval=None)  # start the next interval
                    times = member.cpu_times()
                    age = max(time.time() - member.create_time(), 1e-3)
                    cpu += 100.0 * (times.user + times.system) / age
                rss += member.memory_info().rss
            except psutil.Error:
                continue  # exited between listing and sampling
            alive[member.pid] = member
        self._trees[pid] = alive
        return TreeUsage(rss, round(cpu, 1), len(alive))

    def forget(self, pid: int) -> None:
        self._trees.pop(pid, None)

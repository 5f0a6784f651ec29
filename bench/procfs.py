"""What the benchmark reads from /proc, from outside the processes it measures.

A "supervisor" here is the process the benchmark launched plus the forks of it that still run
the same program (honcho relays each child through a forked copy of itself); the supervised
children are not part of it. Memory is VmRSS/VmHWM from /proc/<pid>/status, CPU time is the
scheduler's nanosecond count from /proc/<pid>/task/*/schedstat (utime/stime from
/proc/<pid>/stat tick at 10 ms, too coarse for an idle process), wake-ups are the voluntary and
involuntary context switches of every thread.

Every process the benchmark starts carries a marker in its environment, inherited by everything
below it; `kill_marked` finds them all by that marker, so nothing outlives a run, whatever the
tool under test did with its process groups.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """One sample of a supervisor's cost, summed over its processes and their threads."""

    processes: int
    rss_main_kib: int
    rss_total_kib: int
    hwm_main_kib: int
    cpu_seconds: float
    context_switches: int

    def minus(self, earlier: Usage) -> tuple[float, int]:
        """CPU seconds and context switches spent between `earlier` and this sample."""
        return (
            self.cpu_seconds - earlier.cpu_seconds,
            self.context_switches - earlier.context_switches,
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def _status_fields(path: Path) -> dict[str, str]:
    fields = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _kib(value: str | None) -> int:
    return int(value.split()[0]) if value else 0


def pids() -> Iterator[int]:
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def parent_of(pid: int) -> int | None:
    stat = _read(PROC / str(pid) / "stat")
    if not stat:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ")".
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def cmdline(pid: int) -> bytes:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return b""


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in pids():
        parent = parent_of(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def supervisor_processes(root: int, helpers: tuple[str, ...] = ()) -> list[int]:
    """`root` and its descendants that are part of the tool: its own forks (the very same command
    line) and the helper programs it runs for itself (`helpers`: a word of their command line)."""
    own = cmdline(root)
    members = [root]
    for pid in descendants(root):
        line = cmdline(pid)
        if (own and line == own) or any(helper in _words(line) for helper in helpers):
            members.append(pid)
    return members


def _words(line: bytes) -> list[str]:
    """The command line's words, the program by its base name."""
    words = [word.decode(errors="replace") for word in line.split(b"\0") if word]
    return [os.path.basename(words[0]), *words[1:]] if words else []


def _cpu_seconds(pid: int) -> float:
    total_ns = 0
    for task in (PROC / str(pid) / "task").glob("*"):
        schedstat = _read(task / "schedstat")
        if schedstat:
            total_ns += int(schedstat.split()[0])
    if total_ns:
        return total_ns / 1e9
    stat = _read(PROC / str(pid) / "stat")
    if not stat:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _context_switches(pid: int) -> int:
    total = 0
    for task in (PROC / str(pid) / "task").glob("*"):
        fields = _status_fields(task / "status")
        total += int(fields.get("voluntary_ctxt_switches", "0"))
        total += int(fields.get("nonvoluntary_ctxt_switches", "0"))
    return total


def usage(root: int, helpers: tuple[str, ...] = ()) -> Usage:
    members = supervisor_processes(root, helpers)
    main = _status_fields(PROC / str(root) / "status")
    return Usage(
        processes=len(members),
        rss_main_kib=_kib(main.get("VmRSS")),
        rss_total_kib=sum(
            _kib(_status_fields(PROC / str(p) / "status").get("VmRSS")) for p in members
        ),
        hwm_main_kib=_kib(main.get("VmHWM")),
        cpu_seconds=sum(_cpu_seconds(p) for p in members),
        context_switches=sum(_context_switches(p) for p in members),
    )


# --- leaving nothing behind ----------------------------------------------------------------------


def marked(marker: str, partial: bool = False) -> list[int]:
    """Live processes whose environment carries `marker` (zombies have no environment left);
    `partial`: any variable that starts with `marker` (every run's, not one run's)."""
    needle = b"\0" + marker.encode() + (b"" if partial else b"\0")
    found = []
    for pid in pids():
        if pid == os.getpid():
            continue
        try:
            environ = (PROC / str(pid) / "environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if needle in b"\0" + environ + b"\0":
            found.append(pid)
    return found


def kill_marked(marker: str, timeout: float = 10.0, partial: bool = False) -> list[int]:
    """SIGKILL every marked process (and its process group) until none is left; what survived."""
    deadline = time.monotonic() + timeout
    while True:
        victims = marked(marker, partial)
        if not victims or time.monotonic() > deadline:
            return victims
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pid in victims:
            wait_gone(pid, max(0.0, deadline - time.monotonic()))


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait (on a pidfd, not a sleep loop) until `pid` has exited; whether it did in time."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)

"""Watching a launched supervisor from outside: its stdout, its exit, and its children's exits.

One selector loop in the benchmark's own thread and no sleeps: `pump(until, timeout)` reads what
arrives, stamping each line with the time.monotonic() of the read that completed it, and notes
exits through pidfds (readable the moment a process ends, whoever its parent is), until `until()`
holds or the deadline passes. The deadline is a hang guard, never the synchronisation.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

READ_BYTES = 1 << 20


class Matches:
    """Lines matching a pattern, with the time each arrived; fed as lines arrive."""

    def __init__(self, pattern: bytes) -> None:
        self._pattern = re.compile(pattern)
        self.found: list[tuple[float, re.Match[bytes]]] = []

    def feed(self, arrived: float, line: bytes) -> None:
        match = self._pattern.search(line)
        if match is not None:
            self.found.append((arrived, match))

    def distinct(self, group: int = 1) -> dict[bytes, float]:
        """First arrival time of each distinct value of `group`."""
        first: dict[bytes, float] = {}
        for arrived, match in self.found:
            first.setdefault(match.group(group), arrived)
        return first

    def __len__(self) -> int:
        return len(self.found)


class Output:
    """The pipe a supervisor writes to: every byte, and the lines with their arrival times.
    During the log relay (hundreds of thousands of lines a second) the benchmark turns
    `parse_lines` off: only the bytes are kept and the DONE markers counted."""

    def __init__(self, fd: int, *, marker: bytes = b"DONE c") -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.parse_lines = True
        self.lines: list[tuple[float, bytes]] = []
        self.chunks: list[bytes] = []
        self.eof = False
        self.markers = 0
        self.last_marker_at: float | None = None
        self._marker = marker
        self._tail = b""
        self._watchers: list[Matches] = []

    def matches(self, pattern: bytes) -> Matches:
        watcher = Matches(pattern)
        for arrived, line in self.lines:
            watcher.feed(arrived, line)
        self._watchers.append(watcher)
        return watcher

    def read(self) -> None:
        try:
            data = os.read(self.fd, READ_BYTES)
        except BlockingIOError:
            return
        now = time.monotonic()
        if not data:
            self.eof = True
            if self._tail and self.parse_lines:
                self._add_line(now, self._tail)
            return
        self._count(now, data)
        self.chunks.append(data)
        if self.parse_lines:
            data = self._tail + data
            *complete, self._tail = data.split(b"\n")
            for line in complete:
                self._add_line(now, line)

    def _count(self, now: float, data: bytes) -> None:
        # A marker split across two reads is found through the end of the previous read.
        previous = self.chunks[-1][-(len(self._marker) - 1) :] if self.chunks else b""
        found = (previous + data).count(self._marker)
        if found:
            self.markers += found
            self.last_marker_at = now

    def _add_line(self, arrived: float, line: bytes) -> None:
        self.lines.append((arrived, line))
        for watcher in self._watchers:
            watcher.feed(arrived, line)

    def data(self) -> bytes:
        return b"".join(self.chunks)


class Launched:
    """A process the benchmark started (a supervisor, or a shell for the raw baseline)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        stderr_path: Path,
    ) -> None:
        self._selector = selectors.DefaultSelector()
        self.exits: dict[int, float | None] = {}  # watched pid -> when it ended (None: unseen)
        self.terminated_at: float | None = None
        self._stderr: IO[bytes] = stderr_path.open("wb")
        self.started_at = time.monotonic()
        self.popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        assert self.popen.stdout is not None
        self.output = Output(self.popen.stdout.fileno())
        self._selector.register(self.output.fd, selectors.EVENT_READ, self._on_output)
        self.watch_exit(self.pid)

    @property
    def exited_at(self) -> float | None:
        return self.exits.get(self.pid)

    @property
    def running(self) -> bool:
        return self.exited_at is None

    def watch_exit(self, pid: int) -> None:
        """Note when `pid` ends (any process: pidfds need no parenthood)."""
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self.exits[pid] = None  # already gone before we could look: time unknown
            return
        self.exits[pid] = None
        self._selector.register(fd, selectors.EVENT_READ, lambda: self._on_exit(pid, fd))

    def has_exited(self, pid: int) -> bool:
        """Whether `pid` has ended (a zombie counts: it runs nothing any more)."""
        if self.exits.get(pid) is not None:
            return True
        stat = _read_stat(pid)
        return stat is None or stat.startswith("Z")

    def _on_output(self) -> None:
        self.output.read()
        if self.output.eof:
            self._selector.unregister(self.output.fd)

    def _on_exit(self, pid: int, fd: int) -> None:
        self.exits[pid] = time.monotonic()
        self._selector.unregister(fd)
        os.close(fd)

    def pump(self, until: Callable[[], bool], timeout: float) -> bool:
        """Handle output and exits until `until()` holds; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.get_map():
                return until()
            for key, _ in self._selector.select(remaining):
                key.data()
        return True

    def pump_for(self, seconds: float) -> None:
        """Keep reading for a fixed duration (only where the scenario itself is a duration)."""
        self.pump(lambda: False, seconds)

    def signal(self, sig: signal.Signals) -> float:
        sent = time.monotonic()
        os.kill(self.pid, sig)
        if sig is signal.SIGTERM:
            self.terminated_at = sent
        return sent

    def stop(self, timeout: float) -> bool:
        """SIGTERM (unless sent already), then read until the supervisor has exited and closed
        its stdout."""
        if self.running and self.terminated_at is None:
            self.signal(signal.SIGTERM)
        return self.pump(lambda: not self.running and self.output.eof, timeout)

    def run_client(self, argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
        """Run a client command (status) to its end, reading the supervisor's output meanwhile;
        its wall time in seconds and its exit code."""
        started = time.monotonic()
        client = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        self.watch_exit(client.pid)
        self.pump(lambda: self.exits.get(client.pid) is not None, 30.0)
        ended = self.exits.get(client.pid) or time.monotonic()
        return ended - started, client.wait(timeout=30.0)

    def close(self) -> None:
        """Kill what is left of the launched process group and release every descriptor."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait()
        for key in list(self._selector.get_map().values()):
            self._selector.unregister(key.fileobj)
            if key.fd != self.output.fd:
                os.close(key.fd)
        self._selector.close()
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._stderr.close()


def _read_stat(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2 :]

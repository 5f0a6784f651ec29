"""Run procrun as a real process and wait for what it prints, with deadlines as hang guards only."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

DEADLINE_SECONDS = 20.0


def write_script(directory: Path, name: str, body: str) -> Path:
    """A small Python child program; its path is returned for use in a Procfile."""
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


def child(script: Path, *args: str) -> str:
    """A Procfile command running `script` with this interpreter."""
    return " ".join([sys.executable, "-u", str(script), *args])


class Procrun:
    """procrun start on a Procfile in `directory`, with its stdout read line by line."""

    def __init__(
        self,
        directory: Path,
        procfile: str,
        *args: str,
        command: Sequence[str] = ("start",),
        env: Mapping[str, str] | None = None,
        toml: str | None = None,
        stdout: int | None = subprocess.PIPE,
        wrapper: Sequence[str] = (),
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        (directory / "Procfile").write_text(textwrap.dedent(procfile))
        if toml is not None:
            (directory / "procrun.toml").write_text(textwrap.dedent(toml))
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PROCRUN_")}
        environment.pop("PORT", None)
        environment.update({"NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
        environment.update(env or {})
        self.lines: list[str] = []  # read, not yet matched by a wait
        self._consumed: list[str] = []  # matched by a wait
        self._closed = False
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._flowing = threading.Event()  # cleared: the reader stops reading procrun's stdout
        self._flowing.set()
        self.proc = subprocess.Popen(
            [*wrapper, sys.executable, "-m", "procrun", *command, *args],
            cwd=directory,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            preexec_fn=preexec_fn,
        )
        self.stderr = ""
        if stdout == subprocess.PIPE:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for raw in self.proc.stdout:
                self._flowing.wait()
                self._queue.put(raw.decode("utf-8", "replace").rstrip("\n"))
        except (ValueError, OSError):  # the test closed stdout to play a reader going away
            pass
        self._queue.put(None)

    def wait_for_line(self, pattern: str, timeout: float = DEADLINE_SECONDS) -> re.Match[str]:
        """Wait for a line matching `pattern` (a regex, searched); fail with everything seen."""
        regex = re.compile(pattern)
        for line in self.lines:
            if match := regex.search(line):
                self.lines.remove(line)  # each line satisfies one wait
                self._consumed.append(line)
                return match
        deadline = time.monotonic() + timeout
        while (item := self._next(deadline)) is not None:
            if match := regex.search(item):
                self._consumed.append(item)
                return match
            self.lines.append(item)
        raise AssertionError(
            f"no line matching {pattern!r} within {timeout} s; output so far:\n" + self.transcript()
        )

    def stall_reading(self) -> None:
        """Play a reader that stops reading (a stuck log shipper): procrun's stdout fills up."""
        self._flowing.clear()

    def resume_reading(self) -> None:
        self._flowing.set()

    def transcript(self) -> str:
        return "\n".join([*self._consumed, *self.lines])

    def rest(self, timeout: float = DEADLINE_SECONDS) -> list[str]:
        """Every line until procrun closes stdout."""
        deadline = time.monotonic() + timeout
        while (item := self._next(deadline)) is not None:
            self.lines.append(item)
        if not self._closed:
            raise AssertionError("procrun did not close stdout; output:\n" + self.transcript())
        return self.lines

    def _next(self, deadline: float) -> str | None:
        """The next line, or None at end of output or when the deadline passes."""
        if self._closed:
            return None
        try:
            item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            return None
        self._closed = item is None
        return item

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = DEADLINE_SECONDS) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("procrun did not exit; output:\n" + self.transcript()) from None
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read().decode()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Procrun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def client_command(socket: Path, *args: str) -> subprocess.Popen[str]:
    """A `procrun` client command (status, restart...) against the supervisor at `socket`,
    running in the background; communicate() for its output."""
    return subprocess.Popen(
        [sys.executable, "-m", "procrun", *args],
        env={**os.environ, "PROCRUN_SOCKET": str(socket)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    children: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        children += [int(child) for child in path.read_text().split()]
    return children


def wait_for_state(
    predicate: Callable[[], bool], what: str, timeout: float = DEADLINE_SECONDS
) -> None:
    """Wait for a state of another process that nothing announces (read from /proc); the
    deadline is a hang guard."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.01)


def blocked_in_write(pid: int) -> bool:
    """True while `pid` sits in the write(2) system call (syscall number 1 on x86-64)."""
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0] == "1"
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def peak_rss_bytes(pid: int) -> int:
    """The most resident memory `pid` has ever used (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def bytes_written(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no wchar for pid {pid}")


def procrun_child_running(procrun: Procrun, needle: str) -> int:
    """The pid of procrun's child whose command line contains `needle`, once it exists."""
    found: list[int] = []

    def look() -> bool:
        for pid in children_of(procrun.proc.pid):
            with contextlib.suppress(FileNotFoundError):
                if needle in Path(f"/proc/{pid}/cmdline").read_text():
                    found.append(pid)
                    return True
        return False

    wait_for_state(look, f"a child running {needle}")
    return found[0]


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until_dead(pid: int, timeout: float = DEADLINE_SECONDS) -> None:
    """Wait for `pid` (not our child) to exit: a pidfd becomes readable when it does."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    if not readable:
        raise AssertionError(f"pid {pid} is still alive after {timeout} s")

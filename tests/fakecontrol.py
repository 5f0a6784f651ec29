"""A ControlTarget with no processes behind it, for the control socket's protocol tests, plus
helpers that talk to a socket below the client library (raw bytes)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from procrun.control.protocol import ProcessRow, StatusResult, SupervisorRow, TypeScaled
from procrun.control.target import ControlTarget
from procrun.errors import UsageError

DEADLINE_SECONDS = 10.0
KNOWN = ("web.1", "worker.1", "worker.2")


def running_row(name: str) -> ProcessRow:
    return {
        "name": name,
        "state": "RUNNING",
        "pid": 2,
        "uptime_seconds": 1.0,
        "restarts": 0,
        "last_exit": None,
        "last_exit_status": None,
        "reason": None,
        "oneshot": False,
        "ready": False,
        "waiting": None,
        "status_text": None,
        "rss_bytes": None,
        "cpu_percent": None,
        "tree_processes": None,
    }


class FakeTarget:
    """Records what it was asked; `slow` blocks stop/restart until `release` is set; `boom` is a
    bug (a RuntimeError); any other unknown name is a UsageError, as in the supervisor."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.release = asyncio.Event()
        self.slow_started = asyncio.Event()
        self.backlog: list[tuple[str, str]] = [("web.1", "old 1"), ("worker.1", "old 2")]
        self.followers: list[asyncio.Queue[tuple[str, str] | None]] = []
        self.subscribed = asyncio.Event()
        self.follower_closed = asyncio.Event()
        self.shutdown_reasons: list[str] = []

    def _check(self, names: Sequence[str]) -> list[str]:
        if "boom" in names:
            raise RuntimeError("the fake blew up")
        unknown = [name for name in names if name not in (*KNOWN, "web", "worker", "slow")]
        if unknown:
            raise UsageError(f"unknown process {unknown[0]!r}")
        return list(names) or list(KNOWN)

    async def status(self, names: Sequence[str], wait: float | None = None) -> StatusResult:
        self.calls.append(("status", list(names)))
        acted = self._check(names)
        supervisor: SupervisorRow = {
            "pid": 1,
            "project_dir": "/srv/app",
            "version": "0",
            "uptime_seconds": 1.0,
            "shutdown_timeout_seconds": None,
            "shutting_down": False,
        }
        return {"supervisor": supervisor, "processes": [running_row(name) for name in acted]}

    async def start(self, names: Sequence[str]) -> tuple[list[str], list[str]]:
        self.calls.append(("start", list(names)))
        return self._check(names), []

    async def stop(self, names: Sequence[str]) -> list[str]:
        self.calls.append(("stop", list(names)))
        if "slow" in names:
            self.slow_started.set()
            await self.release.wait()
        return self._check(names)

    async def restart(self, names: Sequence[str]) -> list[str]:
        self.calls.append(("restart", list(names)))
        return self._check(names)

    def send_signal(self, names: Sequence[str], sig: signal.Signals, group: bool) -> list[str]:
        self.calls.append(("signal", (list(names), sig, group)))
        return [f"{name}: delivered" for name in self._check(names)]

    def recent_lines(self, names: Sequence[str], count: int) -> list[tuple[str, str]]:
        self.calls.append(("recent_lines", (list(names), count)))
        self._check(names)
        return self.backlog[-count:] if count else []

    def follow(self, names: Sequence[str]) -> AsyncIterator[tuple[str, str]]:
        self.calls.append(("follow", list(names)))
        self._check(names)
        queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self.followers.append(queue)  # subscribed at call time, as the server expects
        self.subscribed.set()
        return self._drain(queue)

    async def _drain(
        self, queue: asyncio.Queue[tuple[str, str] | None]
    ) -> AsyncIterator[tuple[str, str]]:
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            self.followers.remove(queue)
            self.follower_closed.set()

    def publish(self, name: str, line: str) -> None:
        for queue in self.followers:
            queue.put_nowait((name, line))

    def end_streams(self) -> None:
        """What a stopping supervisor does: every follow() iterator finishes."""
        for queue in self.followers:
            queue.put_nowait(None)

    def request_shutdown(self, reason: str, force: bool = False) -> None:
        self.shutdown_reasons.append(f"{reason} (forced)" if force else reason)

    async def scale(self, counts: Mapping[str, int]) -> list[TypeScaled]:
        """web has one instance and worker two, as KNOWN says; each scale answers as if done."""
        self.calls.append(("scale", dict(counts)))
        self._check(list(counts))
        changes: list[TypeScaled] = []
        for kind, count in counts.items():
            before = sum(1 for name in KNOWN if name.startswith(f"{kind}."))
            changes.append(
                {
                    "type": kind,
                    "before": before,
                    "after": count,
                    "started": [f"{kind}.{i}" for i in range(before + 1, count + 1)],
                    "stopped": [f"{kind}.{i}" for i in range(before, count, -1)],
                }
            )
        return changes


def _typecheck(target: FakeTarget) -> ControlTarget:
    return target  # mypy proves FakeTarget satisfies the Protocol


@contextlib.contextmanager
def short_temp_dir() -> Iterator[Path]:
    """A private directory under /tmp: socket paths must stay under ~100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="pc-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def raw_exchange(path: Path, data: bytes) -> list[bytes]:
    """Send raw bytes, then every line the server sends until it hangs up."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        with contextlib.suppress(ConnectionError):  # the server may hang up before reading all
            writer.write(data)
            await writer.drain()
        return await read_until_hangup(reader)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def read_until_hangup(reader: asyncio.StreamReader) -> list[bytes]:
    lines = []
    async with asyncio.timeout(DEADLINE_SECONDS):  # a hang guard
        with contextlib.suppress(ConnectionResetError):  # after the data, if we sent too much
            while line := await reader.readline():
                lines.append(line)
    return lines

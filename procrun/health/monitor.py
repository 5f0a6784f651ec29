"""Watching each process's runs for readiness and liveness: the supervisor's Observer.

On each spawn of a process that has a readiness probe, the probe starts: a log probe reads the
relay's lines as they pass, a notify probe waits for READY=1 on the process's own socket, and the
polled kinds (tcp, http, exec) back off from 10 ms to `interval`, and try again at once when the
process writes output (servers say when they listen). The first success posts
ProcessReady; nothing more runs once it is ready, so an idle formation makes no wake-ups. Once it
runs, a liveness probe (if any) checks it every so often; `failures` failures in a row post
ProbeFailed. Any change of state that ends a run cancels what watched it. The supervisor
decides everything else (the ready timeout, the restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import structlog

from procrun.events import Event, ProcessReady, StatusReported
from procrun.health.notifysocket import NotifySocket
from procrun.lifecycle import ProcessState
from procrun.output.relay import Relay
from procrun.process import ManagedProcess
from procrun.settings import POLLED_PROBES, Probe, ProbeKind

if TYPE_CHECKING:
    # Imported when a probe first runs (ssl, subprocess): a formation without polled or liveness
    # probes pays nothing for them.
    from procrun.health.probes import Children, ProbeResult

log = structlog.get_logger()

Post = Callable[[Event], None]


def probe_output_name(process: ManagedProcess) -> str:
    """The prefix of an exec probe's output lines: `web.1:probe`."""
    return f"{process.name}:probe"


class Health:
    def __init__(self, relay: Relay, post: Post, children: Children) -> None:
        """`children` is procrun's reaper: it reaps the shells of exec probes."""
        self._relay = relay
        self._post = post
        self._children = children
        self._directory: Path | None = None
        self._sockets: dict[str, tuple[ManagedProcess, NotifySocket]] = {}
        self._socket_numbers = itertools.count()
        self._watching: dict[str, asyncio.Task[None]] = {}  # a readiness or liveness probe
        self._pings: dict[str, Callable[[], None]] = {}  # WATCHDOG=1 -> the watchdog probe

    # --- the Observer protocol -------------------------------------------------------------------

    def environment(self, process: ManagedProcess) -> Mapping[str, str]:
        """NOTIFY_SOCKET for a process that notifies (ready, or watchdog pings)."""
        settings = process.spec.settings
        notifies = settings.ready is not None and settings.ready.kind is ProbeKind.NOTIFY
        pings = settings.alive is not None and settings.alive.probe.kind is ProbeKind.WATCHDOG
        if not (notifies or pings):
            return MappingProxyType({})
        return {"NOTIFY_SOCKET": str(self._socket_of(process).path)}

    def spawned(self, process: ManagedProcess) -> None:
        probe = process.spec.settings.ready
        if probe is None or process.state is not ProcessState.STARTING:
            return
        if probe.kind is ProbeKind.LOG:
            self._relay.tap(process.name, self._log_reader(process, re.compile(probe.target)))
        elif probe.kind in POLLED_PROBES:
            self._watch(process, self._poll(process, probe))
        # NOTIFY: READY=1 arrives on the socket bound in environment().

    def state_changed(self, process: ManagedProcess) -> None:
        if process.state is ProcessState.STARTING:
            return  # a new run: spawned() starts its probe once the child exists
        self._relay.tap(process.name, None)
        self._unwatch(process)
        alive = process.spec.settings.alive
        if process.state is ProcessState.RUNNING and alive is not None:
            from procrun.health.liveness import watch_liveness

            watching = watch_liveness(process, alive, self._post, self._pings, self._children)
            self._watch(process, watching)

    # --- readiness -------------------------------------------------------------------------------

    def _ready(self, process: ManagedProcess) -> None:
        probe = process.spec.settings.ready
        if probe is not None and process.state is ProcessState.STARTING:
            self._post(ProcessReady(process.name, probe.describe(process.spec.env)))

    def _log_reader(
        self, process: ManagedProcess, pattern: re.Pattern[str]
    ) -> Callable[[bytes], None]:
        def read(block: bytes) -> None:
            text = block.decode("utf-8", "replace")
            if any(pattern.search(line) for line in text.split("\n")):
                self._relay.tap(process.name, None)
                self._ready(process)

        return read

    async def _poll(self, process: ManagedProcess, probe: Probe) -> None:
        from procrun.health.polling import poll_until_ok

        said: list[str] = []
        output = asyncio.Event()  # it wrote something: perhaps "listening", so try again now
        self._relay.tap(process.name, lambda block: output.set())

        def failed(result: ProbeResult) -> None:
            if not said or said[-1] != result.detail:  # once per change, not per attempt
                said.append(result.detail)
                log.info("probe.failed", process=process.name, detail=result.detail)

        await poll_until_ok(
            probe,
            process.spec.env,
            process.spec.cwd,
            max_interval=process.spec.settings.ready_interval_seconds,
            children=self._children,
            on_output=self._output_to_log(process),
            on_failure=failed,
            nudge=output,
        )
        self._relay.tap(process.name, None)
        self._ready(process)

    def _output_to_log(self, process: ManagedProcess) -> Callable[[bytes], None]:
        name = probe_output_name(process)
        return lambda line: self._relay.emit_lines(name, process.spec.kind, line)

    # --- notify ----------------------------------------------------------------------------------

    def _socket_of(self, process: ManagedProcess) -> NotifySocket:
        owner, socket = self._sockets.get(process.name, (None, None))
        if socket is not None and owner is not process:
            socket.close()  # an instance scaled down and up again: a new process, a new socket
            socket = None
        if socket is None:
            if self._directory is None:  # private (0700), short enough for AF_UNIX paths
                import tempfile

                self._directory = Path(tempfile.mkdtemp(prefix="procrun-notify-"))
            path = self._directory / f"{next(self._socket_numbers)}.sock"
            socket = NotifySocket(path, lambda: process.pid, self._on_notify(process))
            socket.start(asyncio.get_running_loop())
            self._sockets[process.name] = (process, socket)
        return socket

    def _on_notify(self, process: ManagedProcess) -> Callable[[Mapping[str, str]], None]:
        def receive(message: Mapping[str, str]) -> None:
            if "STATUS" in message:
                self._post(StatusReported(process.name, message["STATUS"]))
            if message.get("READY") == "1":
                self._ready(process)
            if message.get("WATCHDOG") == "1" and (ping := self._pings.get(process.name)):
                ping()
            if message.get("STOPPING") == "1":
                log.debug("notify.stopping", process=process.name)

        return receive

    # --- tasks -----------------------------------------------------------------------------------

    def _watch(self, process: ManagedProcess, work: Coroutine[None, None, None]) -> None:
        self._unwatch(process)
        self._watching[process.name] = asyncio.ensure_future(work)

    def _unwatch(self, process: ManagedProcess) -> None:
        task = self._watching.pop(process.name, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._watching.values())
        self._watching.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, socket in self._sockets.values():
            socket.close()
        self._sockets.clear()
        if self._directory is not None:
            for path in self._directory.iterdir():
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self._directory.rmdir()

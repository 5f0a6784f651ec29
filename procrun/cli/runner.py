"""`procrun start`: wire a project to a live supervisor.

Order matters: signal handlers first (as PID 1 an unhandled SIGTERM is ignored), then the project
is loaded, stdout opened, and only then is anything spawned.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from procrun import signals
from procrun.clock import LoopClock
from procrun.control.listener import remove_stale_sockets
from procrun.control.paths import SOCKET_SUFFIX, explicit_socket, server_socket_path
from procrun.control.server import ControlServer
from procrun.control.target import SupervisorTarget
from procrun.events import Event, SignalReceived
from procrun.health import sdnotify
from procrun.health.monitor import Health
from procrun.output import eventlog
from procrun.output.eventlog import LogFormat
from procrun.output.relay import OutputStyle, Relay, use_colour
from procrun.output.sink import open_stdout_sink
from procrun.project.loader import ProjectOptions, load_project
from procrun.project.machinelimits import apply_limits
from procrun.reaper import Reaper
from procrun.settings import SupervisorOptions
from procrun.supervisor import HANDLED_SIGNALS, Supervisor
from procrun.undertaker import Undertaker

if TYPE_CHECKING:
    from procrun.watch.watcher import FileWatcher

EXIT_FLUSH_SECONDS = 5.0
"""How long procrun waits at exit for the last output to reach a slow stdout reader."""


@dataclass(frozen=True)
class StartOptions:
    """`procrun start`: the project, and how to run and show it."""

    project: ProjectOptions
    log_format: LogFormat = LogFormat.TEXT
    json_output: bool = False
    timestamps: bool = False
    verbose: bool = False
    socket: str | None = None
    watch: bool = False
    watch_debounce_seconds: float = 0.1


async def run_start(options: StartOptions) -> int:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    with signals.capture_signals(
        loop, HANDLED_SIGNALS, lambda sig: queue.put_nowait(SignalReceived(sig))
    ):
        project = load_project(options.project, os.environ)
        # Refused here, in one line, if the machine's limits cannot hold the formation.
        raised = apply_limits(project.formation.release, project.formation.processes)
        if options.watch:
            from procrun.watch.watcher import import_watchfiles

            import_watchfiles()
        colour = use_colour(sys.stdout.isatty(), os.environ)
        style = OutputStyle(colour=colour, timestamps=options.timestamps, json=options.json_output)
        sink = await open_stdout_sink()
        clock = LoopClock(loop)
        relay = Relay(sink, style, clock=clock)
        eventlog.configure(
            relay,
            options.log_format,
            colour=colour,
            timestamps=options.timestamps,
            verbose=options.verbose,
        )
        log = structlog.get_logger()
        loop.set_exception_handler(eventlog.report_loop_error)
        for r in raised:
            log.info("limit.raised", limit=r.limit, was=r.was, now=r.now, needed=r.needed)
        as_pid1 = os.getpid() == 1
        adopt_orphans = as_pid1 or signals.become_subreaper()
        # As PID 1 the kernel cleans up after procrun; otherwise the undertaker does.
        undertaker = None if as_pid1 else Undertaker.start()
        # Serve the control socket before spawning anything: a second procrun for the same
        # project is refused here, with nothing started.
        socket_path = server_socket_path(project.root, options.socket)
        if explicit_socket(options.socket) is None:  # only in procrun's own socket directory
            for stale in remove_stale_sockets(socket_path.parent, SOCKET_SUFFIX):
                log.debug("control.stale_socket_removed", socket=str(stale))
        reaper = Reaper(adopt_orphans=adopt_orphans, undertaker=undertaker)
        health = Health(relay, queue.put_nowait, reaper)
        supervisor = Supervisor(
            project.formation.processes,
            release=project.formation.release,
            relay=relay,
            clock=clock,
            reaper=reaper,
            queue=queue,
            options=SupervisorOptions(
                shutdown_timeout_seconds=project.shutdown_timeout,
                on_give_up=project.on_give_up,
                force_kill_seconds=project.config.force_kill_after_seconds,
                watching=options.watch,
            ),
            observer=health,
        )
        target = SupervisorTarget(
            supervisor, relay.history, project_dir=project.root, more_of=project.specs_for
        )
        notifier = sdnotify.Notifier.from_environment(os.environ)
        async with ControlServer(socket_path, target, project_dir=project.root):
            for warning in project.start_warnings:
                log.warning("config.warning", message=warning)
            reporting = None
            if notifier is not None:
                ping = sdnotify.watchdog_interval(os.environ, os.getpid())
                reporting = asyncio.ensure_future(sdnotify.report(notifier, supervisor, ping))
            watcher, watching = _watch(options, project.root, supervisor)
            try:
                returncode = await supervisor.run()
            finally:
                if watcher is not None and watching is not None:
                    await watcher.stop()
                    await watching
                await health.close()
            if reporting is not None:
                reporting.cancel()
                await asyncio.gather(reporting, return_exceptions=True)
        if notifier is not None:
            notifier.close()
        if undertaker is not None:
            undertaker.close()
        log.info("procrun.exited", returncode=returncode)
        await relay.close(EXIT_FLUSH_SECONDS)
        return returncode


def _watch(
    options: StartOptions, root: Path, supervisor: Supervisor
) -> tuple[FileWatcher | None, asyncio.Future[None] | None]:
    """`--watch`: the file watcher, running (watchfiles is imported only now)."""
    log = structlog.get_logger()
    if not options.watch:
        return None, None
    from procrun.watch.watcher import FileWatcher, watch_rules

    rules = watch_rules(root, supervisor)
    if not rules.watching:
        log.warning("watch.nothing", hint='no process sets watch = ["..."] in procrun.toml')
        return None, None
    watcher = FileWatcher(supervisor, rules, options.watch_debounce_seconds)
    return watcher, asyncio.ensure_future(watcher.run())

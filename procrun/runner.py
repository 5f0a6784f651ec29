"""`procrun start`: wire a project to a live supervisor.

Order matters: signal handlers first (as PID 1 an unhandled SIGTERM is ignored), then the project
is loaded, stdout opened, and only then is anything spawned.
"""

from __future__ import annotations

import asyncio
import os
import sys

import structlog

from procrun import eventlog, signals
from procrun.actions import SupervisorActions
from procrun.clock import LoopClock
from procrun.controlserver import ControlServer
from procrun.output import OutputStyle, Relay, use_colour
from procrun.project import StartOptions, load_project
from procrun.socketpath import server_socket_path
from procrun.stdout import open_stdout_sink
from procrun.supervisor import HANDLED_SIGNALS, Event, SignalReceived, Supervisor, SupervisorOptions
from procrun.undertaker import Undertaker

EXIT_FLUSH_SECONDS = 5.0
"""How long procrun waits at exit for the last output to reach a slow stdout reader."""


async def run_start(options: StartOptions) -> int:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    with signals.capture_signals(
        loop, HANDLED_SIGNALS, lambda sig: queue.put_nowait(SignalReceived(sig))
    ):
        project = load_project(options, os.environ)
        colour = use_colour(sys.stdout.isatty(), os.environ)
        style = OutputStyle(colour=colour, timestamps=options.timestamps, json=options.json_output)
        sink = await open_stdout_sink()
        relay = Relay(sink, style)
        eventlog.configure(
            relay,
            options.log_format,
            colour=colour,
            timestamps=options.timestamps,
            verbose=options.verbose,
        )
        log = structlog.get_logger()
        as_pid1 = os.getpid() == 1
        adopt_orphans = as_pid1 or signals.become_subreaper()
        # As PID 1 the kernel cleans up after procrun; otherwise the undertaker does.
        undertaker = None if as_pid1 else Undertaker.start()
        # Serve the control socket before spawning anything: a second procrun for the same
        # project is refused here, with nothing started.
        socket_path = server_socket_path(project.root, options.socket)
        supervisor = Supervisor(
            project.formation.processes,
            release=project.formation.release,
            relay=relay,
            clock=LoopClock(loop),
            reaper=signals.Reaper(adopt_orphans=adopt_orphans, undertaker=undertaker),
            queue=queue,
            options=SupervisorOptions(
                shutdown_timeout_seconds=project.shutdown_timeout,
                on_give_up=project.on_give_up,
            ),
        )
        actions = SupervisorActions(supervisor, relay.history)
        async with ControlServer(socket_path, actions, project_dir=project.root):
            for warning in project.start_warnings:
                log.warning("config.warning", message=warning)
            returncode = await supervisor.run()
        if undertaker is not None:
            undertaker.close()
        log.info("procrun.exited", returncode=returncode)
        await relay.close(EXIT_FLUSH_SECONDS)
        return returncode

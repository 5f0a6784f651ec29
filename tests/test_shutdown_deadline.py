"""The deadline binds every stop, on a hand-set clock with real children: whatever state a
process is in when a shutdown begins (a stop or restart on request under way before or after its
second signal, starting, running, backing off, draining, settled, a release), no SIGKILL is
planned past the shutdown's deadline, and the shutdown is over when the clock reaches it."""

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from procrun.events import Event, SignalReceived
from procrun.lifecycle import SETTLED_STATES, ProcessState
from procrun.output.relay import OutputStyle, Relay
from procrun.process import ManagedProcess
from procrun.reaper import Reaper
from procrun.settings import ProcessSettings, RestartPolicy, SupervisorOptions
from procrun.signals import capture_signals
from procrun.supervisor import Supervisor
from tests.fakeclock import FakeClock
from tests.harness import DEADLINE_SECONDS, child, pid_alive, wait_until_dead
from tests.sinks import CollectingSink
from tests.specs import process_spec

CHILDREN = Path(__file__).parent / "children"
RECORDER = CHILDREN / "recorder.py"
CRASHER = CHILDREN / "crasher.py"
SHUTDOWN_TIMEOUT = 15.0
CELERY = ProcessSettings(grace_seconds=600.0, second_signal=signal.SIGQUIT)
HOLDER = (
    "import os, subprocess; p = subprocess.Popen(['sleep', '60'], start_new_session=True); "
    "print('holder', p.pid, flush=True); os._exit(3)"
)


@dataclass
class Formation:
    supervisor: Supervisor
    sink: CollectingSink
    clock: FakeClock
    run: asyncio.Task[int]
    strays: list[int]  # pids outside the supervisor's reach, killed after the test

    @property
    def process(self) -> ManagedProcess:
        return self.supervisor.release or self.supervisor.processes[0]

    async def wait_for(self, *states: ProcessState) -> None:
        async with asyncio.timeout(DEADLINE_SECONDS):
            await self.process.wait_for_state(*states)


@pytest.fixture
async def started() -> AsyncIterator[Callable[..., Awaitable[Formation]]]:
    """Start a supervisor on a fake clock with one process (or a release); clean up after."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    running: list[Formation] = []
    with capture_signals(loop, [signal.SIGCHLD], lambda s: queue.put_nowait(SignalReceived(s))):

        async def start(
            command: str, settings: ProcessSettings, *, release: bool = False
        ) -> Formation:
            clock = FakeClock()
            sink = CollectingSink()
            spec = process_spec(
                "release.1" if release else "proc.1", command, cwd=Path.cwd(), settings=settings
            )
            supervisor = Supervisor(
                [] if release else [spec],
                release=spec if release else None,
                relay=Relay(sink, OutputStyle(), clock=clock),
                clock=clock,
                reaper=Reaper(adopt_orphans=False),
                queue=queue,
                options=SupervisorOptions(shutdown_timeout_seconds=SHUTDOWN_TIMEOUT),
            )
            run = asyncio.create_task(supervisor.run())
            formation = Formation(supervisor, sink, clock, run, [])
            running.append(formation)
            return formation

        yield start
        for formation in running:
            for pid in formation.strays:
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
                    wait_until_dead(pid)
            if not formation.run.done():
                formation.process.kill_now()
                formation.clock.advance(3600.0)
                await asyncio.wait_for(formation.run, DEADLINE_SECONDS)


async def stopping_on_request(formation: Formation, restart: bool) -> asyncio.Task[None]:
    """A stop (or restart) requested before the shutdown, as the control socket would."""
    process = formation.process
    request = (
        formation.supervisor.restart_process(process, "restart requested")
        if restart
        else formation.supervisor.stop_process(process, "stopped on request")
    )
    task = asyncio.create_task(request)
    await formation.sink.wait_for(r"got SIGTERM")
    return task


# Each scenario starts one process and brings it to the state the shutdown is to meet.
async def running_worker(start: Callable[..., Awaitable[Formation]]) -> Formation:
    formation = await start(child(RECORDER, "--ignore"), CELERY)
    await formation.sink.wait_for(r"leader \d+ ready")
    formation.clock.advance(1.0)  # min_uptime
    await formation.wait_for(ProcessState.RUNNING)
    return formation


async def starting(start: Callable[..., Awaitable[Formation]]) -> Formation:
    settings = ProcessSettings(grace_seconds=600.0, min_uptime_seconds=1000.0)
    formation = await start(child(RECORDER, "--ignore"), settings)
    await formation.sink.wait_for(r"leader \d+ ready")
    return formation


async def restart_before_second_signal(start: Callable[..., Awaitable[Formation]]) -> Formation:
    formation = await running_worker(start)
    await stopping_on_request(formation, restart=True)
    formation.clock.advance(2.0)
    return formation


async def stop_after_second_signal(start: Callable[..., Awaitable[Formation]]) -> Formation:
    settings = ProcessSettings(
        grace_seconds=600.0, second_signal=signal.SIGQUIT, second_signal_margin_seconds=60.0
    )
    formation = await start(child(RECORDER, "--ignore"), settings)
    await formation.sink.wait_for(r"leader \d+ ready")
    await stopping_on_request(formation, restart=False)
    formation.clock.advance(540.0)  # QUIT; SIGKILL planned 60 s later, past the deadline
    await formation.sink.wait_for(r"got SIGQUIT")
    return formation


async def backing_off(start: Callable[..., Awaitable[Formation]]) -> Formation:
    settings = ProcessSettings(backoff_initial_seconds=100.0, max_restarts=5)
    formation = await start(child(CRASHER, "3"), settings)
    await formation.wait_for(ProcessState.BACKOFF)  # its timer waits for the fake clock
    return formation


async def draining(start: Callable[..., Awaitable[Formation]]) -> Formation:
    settings = ProcessSettings(min_uptime_seconds=0.0)
    formation = await start(f'{sys.executable} -c "{HOLDER}"', settings)
    formation.strays.append(int((await formation.sink.wait_for(r"holder (\d+)")).group(1)))
    await formation.wait_for(ProcessState.DRAINING)  # until the drain bound, on the fake clock
    return formation


async def fatal(start: Callable[..., Awaitable[Formation]]) -> Formation:
    settings = ProcessSettings(restart=RestartPolicy.NEVER)
    formation = await start(child(CRASHER, "3"), settings)
    # Giving up shuts the formation down by itself; the test's shutdown then meets FATAL.
    await formation.wait_for(ProcessState.FATAL)
    return formation


async def stopped(start: Callable[..., Awaitable[Formation]]) -> Formation:
    formation = await start(child(RECORDER), ProcessSettings())
    await formation.sink.wait_for(r"leader \d+ ready")
    task = await stopping_on_request(formation, restart=False)
    await asyncio.wait_for(task, DEADLINE_SECONDS)
    return formation


async def long_release(start: Callable[..., Awaitable[Formation]]) -> Formation:
    formation = await start(child(RECORDER, "--ignore"), CELERY, release=True)
    await formation.sink.wait_for(r"leader \d+ ready")
    return formation


SCENARIOS = {
    "running": running_worker,
    "starting": starting,
    "restart-before-second-signal": restart_before_second_signal,
    "stop-after-second-signal": stop_after_second_signal,
    "backoff": backing_off,
    "draining": draining,
    "fatal": fatal,
    "stopped": stopped,
    "release": long_release,
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_no_stop_outlives_the_shutdown_deadline(
    started: Callable[..., Awaitable[Formation]], scenario: str
) -> None:
    formation = await SCENARIOS[scenario](started)
    clock, process = formation.clock, formation.process
    with structlog.testing.capture_logs() as logs:
        deadline = clock.now() + SHUTDOWN_TIMEOUT
        formation.supervisor.request_shutdown("test")
        await asyncio.wait_for(formation.supervisor.shutdown_begun(), DEADLINE_SECONDS)
        if process.state not in SETTLED_STATES:
            assert process.state is ProcessState.STOPPING
            plan = process.stop
            if plan is not None:
                assert plan.kill_at <= deadline
                assert all(step.at <= deadline for step in plan.steps)
        clock.advance(SHUTDOWN_TIMEOUT)
        code = await asyncio.wait_for(formation.run, DEADLINE_SECONDS)
    assert clock.now() <= deadline, "nothing needed the clock past the deadline"
    assert process.state in SETTLED_STATES
    assert "Traceback" not in formation.sink.text()
    signals_sent = [e["signal"] for e in logs if e["event"] == "signal.sent"]
    if scenario == "restart-before-second-signal":
        assert signals_sent == ["SIGQUIT", "SIGKILL"], "QUIT moved into the deadline's window"
        assert code == 128 + signal.SIGKILL
        assert process.state is ProcessState.STOPPED, "a restart is not completed by a shutdown"
    if scenario == "stop-after-second-signal":
        assert signals_sent == ["SIGKILL"]

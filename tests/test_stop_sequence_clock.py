"""Long stop sequences on a hand-set clock: a 600 s Celery grace in milliseconds, real child."""

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from procrun.control.target import SupervisorTarget
from procrun.events import Event, ShutdownRequested, SignalReceived
from procrun.lifecycle import ProcessState
from procrun.output.history import LogHistory
from procrun.output.relay import OutputStyle, Relay
from procrun.reaper import Reaper
from procrun.settings import ProcessSettings, ProcessSpec
from procrun.signals import capture_signals
from procrun.supervisor import Supervisor
from tests.fakeclock import FakeClock
from tests.harness import child, wait_until_dead
from tests.sinks import CollectingSink
from tests.specs import process_spec

RECORDER = Path(__file__).parent / "children" / "recorder.py"
CRASHER = Path(__file__).parent / "children" / "crasher.py"
CELERY = ProcessSettings(grace_seconds=600.0, second_signal=signal.SIGQUIT)


@dataclass
class Running:
    supervisor: Supervisor
    sink: CollectingSink
    clock: FakeClock
    run: asyncio.Task[int]


def spec(tmp_path: Path, settings: ProcessSettings, *args: str) -> ProcessSpec:
    return process_spec("worker.1", child(RECORDER, *args), cwd=tmp_path, settings=settings)


@pytest.fixture
async def celery_like(tmp_path: Path) -> AsyncIterator[Running]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    clock = FakeClock()
    sink = CollectingSink()
    with capture_signals(loop, [signal.SIGCHLD], lambda s: queue.put_nowait(SignalReceived(s))):
        supervisor = Supervisor(
            [spec(tmp_path, CELERY, "--ignore", "--pool", "1")],
            relay=Relay(sink, OutputStyle(), clock=clock),
            clock=clock,
            reaper=Reaper(adopt_orphans=False),
            queue=queue,
        )
        run = asyncio.create_task(supervisor.run())
        try:
            yield Running(supervisor, sink, clock, run)
        finally:
            if not run.done():
                supervisor.processes[0].kill_now()
                await asyncio.wait_for(run, 20)


async def test_term_then_quit_before_the_deadline_then_kill_the_group(
    celery_like: Running,
) -> None:
    sink, clock = celery_like.sink, celery_like.clock
    ready = await sink.wait_for(r"leader (\d+) ready pgid=\d+ pool=(\d+)")
    pool = int(ready.group(2))
    celery_like.supervisor.post(ShutdownRequested("test"))
    await sink.wait_for(r"leader \d+ got SIGTERM")
    assert clock.pending() == [1.0, 590.0], "saying what it waits for; QUIT 10 s before the end"

    with capture_logs() as logs:
        clock.advance(1.0)  # a long stop says what it waits for, and until when
        clock.advance(588.0)
    target = SupervisorTarget(celery_like.supervisor, LogHistory(), project_dir=Path.cwd())
    row = (await target.status([]))["processes"][0]
    assert (row["state"], row["reason"]) == (
        "STOPPING",
        "shutdown: test; SIGQUIT in 1 s, SIGKILL in 11 s",
    ), "status shows the seconds left to each step"
    waiting = [e["waiting_for"] for e in logs if e["event"] == "shutdown.waiting"]
    assert waiting[0] == "worker.1 (SIGQUIT in 589 s, SIGKILL in 599 s)"
    assert len(waiting) == 59, "again every 10 s, no more often"
    await asyncio.sleep(0)
    assert "SIGQUIT" not in sink.text()
    clock.advance(1.0)
    await sink.wait_for(r"leader \d+ got SIGQUIT")
    assert "pool" not in "".join(s for s in sink.text().splitlines() if "got SIG" in s)

    clock.advance(10.0)
    assert await asyncio.wait_for(celery_like.run, 20) == 128 + signal.SIGKILL
    wait_until_dead(pool)


async def test_a_restart_due_when_shutdown_starts_spawns_nothing(tmp_path: Path) -> None:
    """The restart timer and the stop request land in the same loop iteration: the restart must
    not spawn a child that nobody would stop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    clock = FakeClock()
    sink = CollectingSink()
    crasher = process_spec(
        "crasher.1",
        child(CRASHER, "3"),
        cwd=tmp_path,
        settings=ProcessSettings(backoff_initial_seconds=1.0),
    )
    stubborn = spec(tmp_path, ProcessSettings(grace_seconds=100.0), "--ignore")
    with capture_signals(loop, [signal.SIGCHLD], lambda s: queue.put_nowait(SignalReceived(s))):
        supervisor = Supervisor(
            [crasher, stubborn],
            relay=Relay(sink, OutputStyle(), clock=clock),
            clock=clock,
            reaper=Reaper(adopt_orphans=False),
            queue=queue,
        )
        run = asyncio.create_task(supervisor.run())
        await sink.wait_for(r"leader \d+ ready")
        first = supervisor.processes[0]
        await asyncio.wait_for(first.wait_for_state(ProcessState.BACKOFF), 20)
        clock.advance(1.0)  # posts RestartDue...
        supervisor.post(ShutdownRequested("test"))  # ...and the stop request right behind it
        await sink.wait_for(r"leader \d+ got SIGTERM")
        assert first.state is ProcessState.STOPPED
        clock.advance(100.0)
        assert await asyncio.wait_for(run, 20) == 128 + signal.SIGKILL
    assert sink.text().count("started, exiting 3") == 1

"""depends_on in a shutdown, on a hand-set clock with real children: a dependency stops after its
dependents, and the order never takes a stop past the shutdown's deadline."""

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from procrun.events import Event, SignalReceived
from procrun.lifecycle import ProcessState
from procrun.ordering import latest_stop
from procrun.output.relay import OutputStyle, Relay
from procrun.reaper import Reaper
from procrun.settings import Condition, ProcessSettings, SupervisorOptions
from procrun.signals import capture_signals
from procrun.supervisor import Supervisor
from tests.fakeclock import FakeClock
from tests.harness import DEADLINE_SECONDS, child
from tests.sinks import CollectingSink
from tests.specs import process_spec

RECORDER = Path(__file__).parent / "children" / "recorder.py"
CELERY = ProcessSettings(grace_seconds=600.0, second_signal=signal.SIGQUIT)
ON_REDIS = {"redis": Condition.READY}


class Formation:
    def __init__(self, worker: str, worker_settings: ProcessSettings, timeout: float | None):
        self.clock = FakeClock()
        self.sink = CollectingSink()
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        redis = process_spec("redis.1", child(RECORDER), cwd=Path.cwd())
        dependent = process_spec(
            "worker.1",
            worker,
            cwd=Path.cwd(),
            settings=replace(worker_settings, depends_on=ON_REDIS),
        )
        self.supervisor = Supervisor(
            [dependent, redis],  # the dependent first: the order comes from depends_on
            relay=Relay(self.sink, OutputStyle(), clock=self.clock),
            clock=self.clock,
            reaper=Reaper(adopt_orphans=False),
            queue=self.queue,
            options=SupervisorOptions(shutdown_timeout_seconds=timeout),
        )
        self.worker, self.redis = self.supervisor.processes

    async def up(self) -> None:
        """Both running: redis first, the worker only once redis is ready."""
        await self.sink.wait_for(r"redis.1 +\| leader \d+ ready")
        assert self.worker.state is ProcessState.STOPPED  # waits for redis
        self.clock.advance(1.0)  # redis's min_uptime: it is ready
        await self.sink.wait_for(r"worker.1 +\| leader \d+ ready")
        self.clock.advance(1.0)
        async with asyncio.timeout(DEADLINE_SECONDS):
            await self.worker.wait_for_state(ProcessState.RUNNING)


@pytest.fixture
async def signals() -> AsyncIterator[list[Formation]]:
    formations: list[Formation] = []
    loop = asyncio.get_running_loop()

    def deliver(sig: signal.Signals) -> None:
        for formation in formations:
            formation.queue.put_nowait(SignalReceived(sig))

    with capture_signals(loop, [signal.SIGCHLD], deliver):
        yield formations
    for formation in formations:
        for process in formation.supervisor.processes:
            process.kill_now()


async def test_a_dependency_stops_once_its_dependents_have(signals: list[Formation]) -> None:
    formation = Formation(child(RECORDER), ProcessSettings(), timeout=None)
    signals.append(formation)
    run = asyncio.create_task(formation.supervisor.run())
    await formation.up()
    formation.queue.put_nowait(SignalReceived(signal.SIGTERM))
    assert await asyncio.wait_for(run, DEADLINE_SECONDS) == 0
    text = formation.sink.text()

    def at(pattern: str) -> int:
        found = re.search(pattern, text)
        assert found is not None, f"{pattern!r} not in {text!r}"
        return found.start()

    assert at(r"redis.1 +\| leader \d+ ready") < at(r"worker.1 +\| leader \d+ ready")
    assert at(r"worker.1 +\| leader \d+ got SIGTERM") < at(r"redis.1 +\| leader \d+ got SIGTERM")


async def test_a_dependent_that_hangs_holds_its_dependency_only_to_its_share(
    signals: list[Formation],
) -> None:
    timeout = 15.0
    formation = Formation(child(RECORDER, "--ignore"), CELERY, timeout=timeout)
    signals.append(formation)
    run = asyncio.create_task(formation.supervisor.run())
    await formation.up()
    started = formation.clock.now()
    formation.queue.put_nowait(SignalReceived(signal.SIGTERM))
    await formation.sink.wait_for(r"worker.1 +\| leader \d+ got SIGTERM")
    assert formation.redis.state is ProcessState.RUNNING  # held back for the worker
    # Its own grace (30 s) does not fit: half the window goes to the worker, half to redis.
    assert latest_stop(30.0, started, started + timeout) == started + timeout / 2
    formation.clock.advance(timeout / 2)
    await formation.sink.wait_for(r"redis.1 +\| leader \d+ got SIGTERM")
    await formation.sink.wait_for(r"worker.1 +\| leader \d+ got SIGQUIT")
    async with asyncio.timeout(DEADLINE_SECONDS):
        await formation.redis.wait_for_state(ProcessState.STOPPED)
    assert formation.worker.state is ProcessState.STOPPING
    assert formation.worker.stop is not None
    assert formation.worker.stop.kill_at <= started + timeout
    formation.clock.advance(timeout / 2)  # the deadline: the worker's SIGKILL
    assert await asyncio.wait_for(run, DEADLINE_SECONDS) != 0  # a SIGKILL was needed


def test_latest_stop_without_a_deadline_waits_for_the_dependents() -> None:
    assert latest_stop(30.0, 100.0, None) is None
    assert latest_stop(5.0, 100.0, 130.0) == 125.0  # its own grace fits in its half

"""Scaling (procrun/scaling.py): which instances come and go, and a Celery worker's scale-down
through its own 600 s stop sequence on a hand-set clock, with real children."""

import asyncio
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from procrun.control.target import SupervisorTarget
from procrun.errors import ProcrunError
from procrun.events import Event, ShutdownRequested, SignalReceived
from procrun.output.history import LogHistory
from procrun.output.relay import OutputStyle, Relay
from procrun.reaper import Reaper
from procrun.scaling import Scaler, plan_scale
from procrun.settings import ProcessSettings, ProcessSpec
from procrun.signals import capture_signals
from procrun.supervisor import Supervisor
from tests.fakeclock import FakeClock
from tests.harness import child
from tests.sinks import CollectingSink
from tests.specs import process_spec

RECORDER = Path(__file__).parent / "children" / "recorder.py"
CELERY = ProcessSettings(grace_seconds=600.0, second_signal=signal.SIGQUIT)


@pytest.mark.parametrize(
    ("have", "count", "add", "retire"),
    [
        ({1}, 3, [2, 3], []),
        ({1, 2, 3}, 1, [], [3, 2]),
        ({1, 2}, 0, [], [2, 1]),
        (set(), 2, [1, 2], []),
        ({1, 2}, 2, [], []),
        ({1, 3}, 3, [2], []),  # a gap is filled, numbered as `start` would number it
        ({1, 3}, 1, [], [3]),
    ],
)
def test_plan_adds_the_missing_numbers_and_stops_the_highest_first(
    have: set[int], count: int, add: list[int], retire: list[int]
) -> None:
    assert plan_scale(have, count) == (add, retire)


@dataclass
class Running:
    supervisor: Supervisor
    target: SupervisorTarget
    sink: CollectingSink
    clock: FakeClock
    run: asyncio.Task[int]


def workers(tmp_path: Path, count: int) -> list[ProcessSpec]:
    """Celery-like workers that ignore TERM and QUIT: only the SIGKILL at the end stops them."""
    command = child(RECORDER, "--ignore")
    return [
        process_spec(f"worker.{i}", command, cwd=tmp_path, settings=CELERY)
        for i in range(1, count + 1)
    ]


@pytest.fixture
async def two_workers(tmp_path: Path) -> AsyncIterator[Running]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    clock = FakeClock()
    sink = CollectingSink()

    def more_of(kind: str, count: int | None = None) -> Sequence[ProcessSpec]:
        return workers(tmp_path, 2 if count is None else count)

    with capture_signals(loop, [signal.SIGCHLD], lambda s: queue.put_nowait(SignalReceived(s))):
        supervisor = Supervisor(
            workers(tmp_path, 2),
            relay=Relay(sink, OutputStyle(), clock=clock),
            clock=clock,
            reaper=Reaper(adopt_orphans=False),
            queue=queue,
        )
        target = SupervisorTarget(supervisor, LogHistory(), project_dir=tmp_path, more_of=more_of)
        run = asyncio.create_task(supervisor.run())
        try:
            yield Running(supervisor, target, sink, clock, run)
        finally:
            if not run.done():
                # Queued before the kills' SIGCHLD: their exits are seen as the shutdown's.
                supervisor.post(ShutdownRequested("test over"))
                for process in supervisor.processes:
                    process.kill_now()
                await asyncio.wait_for(run, 20)


async def test_a_celery_worker_scaled_down_gets_term_then_quit_then_leaves(
    two_workers: Running,
) -> None:
    sink, clock, target = two_workers.sink, two_workers.clock, two_workers.target
    await sink.wait_for(r"worker.1 +\| leader \d+ ready")
    await sink.wait_for(r"worker.2 +\| leader \d+ ready")

    scaling = asyncio.create_task(target.scale({"worker": 1}))
    await sink.wait_for(r"worker.2 +\| leader \d+ got SIGTERM")
    rows = {row["name"]: row for row in (await target.status([]))["processes"]}
    assert rows["worker.2"]["state"] == "STOPPING"
    assert rows["worker.2"]["reason"] == "scaled down; SIGQUIT in 590 s, SIGKILL in 600 s"
    with pytest.raises(ProcrunError, match=r"worker is still being scaled \(stopping worker.2\)"):
        await target.scale({"worker": 3})

    clock.advance(590.0)
    await sink.wait_for(r"worker.2 +\| leader \d+ got SIGQUIT")
    assert not scaling.done(), "it answers once the stop is over"
    clock.advance(10.0)
    assert await asyncio.wait_for(scaling, 20) == [
        {"type": "worker", "before": 2, "after": 1, "started": [], "stopped": ["worker.2"]}
    ]
    assert [p.name for p in two_workers.supervisor.processes] == ["worker.1"]
    assert "got SIG" not in "".join(s for s in sink.text().splitlines() if "worker.1" in s)

    # The name comes back as a new process; the old one's record is gone with it.
    assert await target.scale({"worker": 2}) == [
        {"type": "worker", "before": 1, "after": 2, "started": ["worker.2"], "stopped": []}
    ]
    await sink.wait_for(r"(?s)got SIGQUIT.*worker.2 +\| leader \d+ ready")
    assert [row["name"] for row in (await target.status([]))["processes"]] == [
        "worker.1",
        "worker.2",
    ]


async def test_nothing_is_scaled_before_the_release_has_run(tmp_path: Path) -> None:
    clock = FakeClock()
    supervisor = Supervisor(
        workers(tmp_path, 1),
        release=process_spec("release.1", "true", cwd=tmp_path),
        relay=Relay(CollectingSink(), OutputStyle(), clock=clock),
        clock=clock,
        reaper=Reaper(adopt_orphans=False),
    )
    with pytest.raises(ProcrunError, match="still running the release: scale afterwards"):
        await Scaler(supervisor).scale({"worker": []})
    assert [p.name for p in supervisor.processes] == ["worker.1"]

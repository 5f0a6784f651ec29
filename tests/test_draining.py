"""A child that has exited while its output is still being relayed is DRAINING: a state of its
own, with no pid, never a RUNNING process without one."""

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from procrun.cli.statusview import render_status
from procrun.control.target import SupervisorTarget
from procrun.events import SignalReceived
from procrun.lifecycle import ProcessState
from procrun.output.relay import OutputStyle, Relay
from procrun.process import OUTPUT_DRAIN_SECONDS
from procrun.reaper import Reaper
from procrun.settings import ProcessSettings, RestartPolicy
from procrun.signals import capture_signals
from procrun.supervisor import Supervisor
from tests.fakeclock import FakeClock
from tests.harness import DEADLINE_SECONDS, Procrun, pid_alive, wait_until_dead
from tests.sinks import CollectingSink
from tests.specs import process_spec

# Leaves a grandchild in a session of its own holding the output pipe, then exits 3: the exit is
# reaped at once, the pipe stays open until the drain bound.
HOLDER = (
    "import os, subprocess, sys; "
    "p = subprocess.Popen(['sleep', '60'], start_new_session=True); "
    "print('holder', p.pid, flush=True); os._exit(3)"
)


@pytest.fixture
async def holder_pids() -> AsyncIterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            wait_until_dead(pid)


async def test_an_exit_with_output_still_open_is_draining(
    tmp_path: Path, holder_pids: list[int]
) -> None:
    clock = FakeClock()
    sink = CollectingSink()
    relay = Relay(sink, OutputStyle(), clock=clock)
    settings = ProcessSettings(min_uptime_seconds=0.0, restart=RestartPolicy.NEVER)
    command = f'{sys.executable} -c "{HOLDER}"'
    spec = process_spec("holder.1", command, cwd=tmp_path, settings=settings)
    supervisor = Supervisor([spec], relay=relay, clock=clock, reaper=Reaper(adopt_orphans=False))
    target = SupervisorTarget(supervisor, relay.history, project_dir=tmp_path)
    process = supervisor.processes[0]
    loop = asyncio.get_running_loop()
    with (
        structlog.testing.capture_logs() as logs,
        capture_signals(loop, [signal.SIGCHLD], lambda sig: supervisor.post(SignalReceived(sig))),
    ):
        run = asyncio.create_task(supervisor.run())
        holder_pids.append(int((await sink.wait_for(r"holder (\d+)")).group(1)))
        async with asyncio.timeout(DEADLINE_SECONDS):
            await process.wait_for_state(ProcessState.DRAINING)
        status = await target.status([])
        assert status["processes"][0]["state"] == "DRAINING"
        assert status["processes"][0]["pid"] is None
        assert any(" DRAINING " in line for line in render_status(status))
        clock.advance(OUTPUT_DRAIN_SECONDS)  # the pipe is still held: the bound decides
        async with asyncio.timeout(DEADLINE_SECONDS):
            exit_code = await run
    assert process.state is ProcessState.FATAL
    assert exit_code == 3
    states = [e["state"] for e in logs if e["event"] == "process.state_changed"]
    assert states == ["STARTING", "DRAINING", "FATAL"]
    assert [e for e in logs if "pid" in e and e["pid"] is None] == []


def test_instant_exits_never_log_a_missing_pid(tmp_path: Path) -> None:
    """A child that exits at once under min_uptime 0 s, and a command that is not found: the
    event log (debug included) never says pid=None."""
    toml = """
        on_give_up = "continue"
        [defaults]
        min_uptime = "0s"
        max_restarts = 3
        backoff = "1ms"
    """
    procfile = "missing: true && no-such-command-procrun-test\nquick: false\nsteady: sleep 60\n"
    with Procrun(tmp_path, procfile, "-v", toml=toml) as procrun:
        procrun.wait_for_line(r"process.gave_up .*process=missing.1")
        procrun.wait_for_line(r"process.gave_up .*process=quick.1")
        procrun.signal(signal.SIGTERM)
        procrun.rest()
        assert procrun.wait() == 127
    transcript = procrun.transcript()
    assert "state=DRAINING" in transcript
    assert "process.exited" in transcript
    assert "pid=None" not in transcript

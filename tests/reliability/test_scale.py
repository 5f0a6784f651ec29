"""Scale: a formation of 200 processes starts, reports, relays and stops; a SIGTERM in the middle
of starting a large one stops the spawning (issue 6)."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakecontrol import short_temp_dir
from tests.harness import Procrun, peak_rss_bytes, pid_alive, wait_until_dead

# A small child: sh prints the ready line with its pid, then becomes `sleep` (same pid), which
# the stop signal ends. No Python per child, so 200 of them fit a small CI machine.
TICK = "tick: sh -c 'echo \"tick $$ ready\"; exec sleep 1000'\n"
SCALE = 200
RSS_BOUND = 150 * 1000 * 1000
START_BOUND_SECONDS = 60.0
STATUS_BOUND_SECONDS = 20.0
LONG_DEADLINE = 120.0  # a hang guard only; generous for a loaded 2-core machine


@pytest.fixture
def socket_path() -> Iterator[Path]:
    with short_temp_dir() as directory:
        yield directory / "control.sock"


def test_two_hundred_processes_start_report_relay_and_stop(
    tmp_path: Path, socket_path: Path
) -> None:
    env = {"PROCRUN_SOCKET": str(socket_path)}
    launched = time.monotonic()
    with Procrun(tmp_path, TICK, "-c", f"tick={SCALE}", env=env) as procrun:
        ready: dict[str, int] = {}
        for _ in range(SCALE):
            line = procrun.wait_for_line(r"^(tick\.\d+) +\| tick (\d+) ready$", LONG_DEADLINE)
            ready[line.group(1)] = int(line.group(2))
        started = time.monotonic() - launched
        assert sorted(ready) == sorted(f"tick.{n}" for n in range(1, SCALE + 1))
        for _ in range(SCALE):
            procrun.wait_for_line(r"process.running .*process=tick\.\d+", LONG_DEADLINE)

        asked = time.monotonic()
        status = subprocess.run(
            [sys.executable, "-m", "procrun", "status"],
            cwd=tmp_path,
            env={**os.environ, **env, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=LONG_DEADLINE,
        )
        answered = time.monotonic() - asked
        assert status.returncode == 0, status.stdout + status.stderr
        rows = [line.split() for line in status.stdout.splitlines()[2:]]
        assert len(rows) == SCALE
        assert {row[0]: int(row[2]) for row in rows if row[1] == "RUNNING"} == ready

        rss = peak_rss_bytes(procrun.proc.pid)
        procrun.signal(signal.SIGTERM)
        assert procrun.wait(LONG_DEADLINE) == 0
        procrun.rest()
    print(
        f"{SCALE} processes: started in {started:.1f} s, status answered in {answered:.2f} s, "
        f"procrun peak RSS {rss / 1e6:.1f} MB"
    )
    for pid in ready.values():
        wait_until_dead(pid)
    assert procrun.transcript().count("process.stopped ") == SCALE
    assert started < START_BOUND_SECONDS
    assert answered < STATUS_BOUND_SECONDS
    assert rss < RSS_BOUND, f"procrun's peak RSS is {rss / 1e6:.1f} MB"


def test_sigterm_while_a_large_formation_starts_stops_the_spawning(tmp_path: Path) -> None:
    count = 150
    with Procrun(tmp_path, TICK, "-c", f"tick={count}") as procrun:
        procrun.wait_for_line(r"process.spawned ", LONG_DEADLINE)
        procrun.signal(signal.SIGTERM)
        assert procrun.wait(LONG_DEADLINE) == 0
        procrun.rest()
    transcript = procrun.transcript()
    spawned = [int(pid) for pid in re.findall(r"process.spawned .*pid=(\d+)", transcript)]
    print(f"SIGTERM at the first spawn: {len(spawned)} of {count} were started")
    assert 0 < len(spawned) < count, "procrun must stop spawning once asked to stop"
    _, _, after = transcript.partition("shutdown.started")
    assert after, transcript
    assert "process.spawned" not in after, "nothing is spawned once the shutdown has started"
    assert len(re.findall(r"process.(?:stopped|exited) ", after)) == len(spawned)
    assert [pid for pid in spawned if pid_alive(pid)] == []


STORM = 600  # enough SIGCHLDs at once to fill asyncio's one-byte-per-signal wake-up socket


@pytest.mark.parametrize("run", range(3))
def test_hundreds_of_children_exiting_at_once_are_all_reaped(tmp_path: Path, run: int) -> None:
    """A SIGTERM ends 600 children at the same moment: 600 SIGCHLDs, coalesced and partly
    dropped by the kernel's wake-up socket. Every exit must still be reaped, with no warning
    about the wake-up fd, and procrun must exit (issue 18: it used to hang about 3 times in 100
    at 1,000, with 'Exception ignored when trying to write to the signal wakeup fd')."""
    with Procrun(tmp_path, "s: exec sleep 1000\n", "-c", f"s={STORM}") as procrun:
        for _ in range(STORM):
            procrun.wait_for_line(r"process.spawned .*process=s\.", LONG_DEADLINE)
        procrun.signal(signal.SIGTERM)
        assert procrun.wait(LONG_DEADLINE) == 0
        lines = procrun.rest()
    stopped = [
        line for line in [*procrun.transcript().splitlines(), *lines] if "process.stopped" in line
    ]
    assert len(set(stopped)) == STORM
    assert "wakeup fd" not in procrun.stderr
    assert "Exception ignored" not in procrun.stderr

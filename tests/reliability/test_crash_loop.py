"""A child that crashes at once, for ever: the backoff bounds the restart rate and procrun's own
CPU stays low (issue 6)."""

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.harness import Procrun, child

CRASHER = Path(__file__).parent.parent / "children" / "crasher.py"
BACKOFF = 0.01
BACKOFF_MAX = 0.2
RESTARTS_MEASURED = 20
CPU_BOUND = 0.6  # of one core; generous, for a loaded 2-core CI machine
TIMER_SLACK = 0.005  # a logged time is taken a moment after what it logs happened


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` itself (its reaped children are counted apart, in cutime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def event(line: str) -> dict[str, Any]:
    parsed = json.loads(line)
    assert isinstance(parsed, dict)
    return parsed


def moment(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["timestamp"]).timestamp()


def test_a_crash_loop_is_bounded_by_the_backoff_and_costs_little_cpu(tmp_path: Path) -> None:
    toml = (
        "[processes.crasher]\n"
        f'max_restarts = 50\nbackoff = "{BACKOFF * 1000:g}ms"\nbackoff_max = "{BACKOFF_MAX}s"\n'
    )
    with Procrun(
        tmp_path, f"crasher: {child(CRASHER, '1')}\n", "--log-format", "json", toml=toml
    ) as procrun:
        procrun.wait_for_line(r'"event": "process.restarting"')
        cpu_before, wall_before = cpu_seconds(procrun.proc.pid), time.monotonic()
        for _ in range(RESTARTS_MEASURED):
            procrun.wait_for_line(r'"event": "process.restarting"')
        cpu_used, wall = cpu_seconds(procrun.proc.pid) - cpu_before, time.monotonic() - wall_before
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
        procrun.rest()
    share = cpu_used / wall
    print(f"crash loop: procrun used {cpu_used:.2f} s CPU in {wall:.2f} s ({share:.0%} of a core)")
    assert share < CPU_BOUND, f"procrun used {share:.0%} of a core in a crash loop"

    events = [event(line) for line in procrun.transcript().splitlines() if line.startswith("{")]
    restarting = [e for e in events if e["event"] == "process.restarting"]
    spawned = [e for e in events if e["event"] == "process.spawned"]
    assert len(restarting) > RESTARTS_MEASURED
    assert not [e for e in events if e["event"] == "process.gave_up"]
    # The first restart is immediate, then the delay doubles per failure up to backoff_max...
    delays = [e["delay"] for e in restarting]
    expected = [0.0] + [round(min(BACKOFF * 2**n, BACKOFF_MAX), 3) for n in range(len(delays) - 1)]
    assert delays == expected
    # ...and each respawn waits out its delay after the exit, by procrun's own clock (10% off
    # for the moment between arming the timer and logging the event)...
    for restart, respawn in zip(restarting, spawned[1:], strict=False):
        waited = moment(respawn) - moment(restart)
        assert waited >= restart["delay"] * 0.9, (restart, respawn)
    # ...so the whole run took at least the sum of the delays.
    first, last = moment(spawned[0]), moment(spawned[-1])
    assert last - first >= sum(delays[: len(spawned) - 1]) - TIMER_SLACK

"""Scale: a formation of 200 processes starts, reports, relays and stops; a SIGTERM in the middle
of starting a large one stops the spawning (issue 6). Issue 18 at a size CI can run: every line
of 300 children relayed whole and `status --json` listing all of them, a formation the
open-file limit cannot hold refused in one line, and a quiet process heard through 50 flooding
ones. Nothing here is timed: the figures are `make bench` scenarios 8, 11 and 12."""

import collections
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakecontrol import short_temp_dir
from tests.harness import Procrun, client_command, peak_rss_bytes, pid_alive, wait_until_dead

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


COUNT = 300
# Three lines carrying the pid, then `sleep` in the same pid, which the stop signal ends.
CHATTY = 's: sh -c \'echo "ready $$"; echo "line $$ 2"; echo "line $$ 3"; exec sleep 1000\'\n'


def open_files_limit(soft: int, hard: int) -> Callable[[], None]:
    """preexec_fn: procrun starts under this RLIMIT_NOFILE."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_three_hundred_children_every_line_relayed_and_listed(
    tmp_path: Path, socket_path: Path
) -> None:
    """Under a soft limit of 64 open files (and a hard one of 4096) procrun raises its own, says
    so, and runs all 300."""
    env = {"PROCRUN_SOCKET": str(socket_path)}
    limit = open_files_limit(64, 4096)
    with Procrun(tmp_path, CHATTY, "-c", f"s={COUNT}", env=env, preexec_fn=limit) as procrun:
        raised = procrun.wait_for_line(r"limit\.raised .*limit='open files' .*was=64")
        assert "now=658" in raised.string, raised.string  # twice the need: (300 + 29) * 2
        for _ in range(COUNT):
            procrun.wait_for_line(r"process\.running .*process=s\.\d+", LONG_DEADLINE)
        status = client_command(socket_path, "status", "--json")
        listed, errors = status.communicate(timeout=LONG_DEADLINE)
        assert status.returncode == 0, errors
        rows = json.loads(listed)["processes"]
        procrun.signal(signal.SIGTERM)
        assert procrun.wait(LONG_DEADLINE) == 0
        procrun.rest(LONG_DEADLINE)
    assert [row["name"] for row in rows] == [f"s.{n}" for n in range(1, COUNT + 1)]
    assert {row["state"] for row in rows} == {"RUNNING"}
    pids = {row["name"]: row["pid"] for row in rows}

    seen: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in procrun.transcript().splitlines():
        if line.startswith("procrun "):
            continue
        match = re.fullmatch(r"(s\.\d+) +\| (?:ready (\d+)|line (\d+) ([23]))", line)
        assert match is not None, f"garbled: {line!r}"
        name, pid = match.group(1), match.group(2) or match.group(3)
        assert int(pid) == pids[name], line
        seen[(name, match.group(4) or "1")] += 1
    assert seen == collections.Counter({(n, k): 1 for n in pids for k in "123"})
    for pid in pids.values():
        wait_until_dead(pid)
    assert "Traceback" not in procrun.stderr


def test_a_formation_over_the_hard_open_files_limit_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    marker = "1000.4242"  # `sleep` with this argument: none may ever run
    with Procrun(
        tmp_path, f"s: sleep {marker}\n", "-c", f"s={COUNT}", preexec_fn=open_files_limit(64, 64)
    ) as procrun:
        assert procrun.wait(LONG_DEADLINE) == 1
        output = procrun.rest()
    assert procrun.stderr == (
        f"procrun: {COUNT} processes need about 329 open files, more than the hard limit allows "
        "(ulimit -Hn 64); raise the hard limit (docker run --ulimit nofile=N, LimitNOFILE=N) "
        "or run fewer (-c)\n"
    )
    assert not any("process.spawned" in line for line in output), output
    assert [pid for pid in _pids_running(marker) if pid_alive(pid)] == []


def test_a_scale_over_the_hard_open_files_limit_is_refused_in_one_line(
    tmp_path: Path, socket_path: Path
) -> None:
    """`procrun scale` past what the hard limit holds: one line, exit 1, and nothing started,
    where each new instance used to fail its spawn with EMFILE and crash-loop."""
    marker = "1000.4343"
    env = {"PROCRUN_SOCKET": str(socket_path)}
    limit = open_files_limit(64, 64)
    with Procrun(tmp_path, f"s: sleep {marker}\n", env=env, preexec_fn=limit) as procrun:
        procrun.wait_for_line(r"process\.running .*process=s\.1")
        scale = client_command(socket_path, "scale", f"s={COUNT}")
        out, err = scale.communicate(timeout=LONG_DEADLINE)
        assert (scale.returncode, out) == (1, "")
        assert err == (
            f"procrun: cannot scale: {COUNT} processes need about 329 open files, more than the "
            "hard limit allows (ulimit -Hn 64); raise the hard limit (docker run --ulimit "
            "nofile=N, LimitNOFILE=N) or scale to fewer\n"
        )
        status = client_command(socket_path, "status", "--json")
        listing, _ = status.communicate(timeout=LONG_DEADLINE)
        assert [row["name"] for row in json.loads(listing)["processes"]] == ["s.1"]
        assert len(_pids_running(marker)) == 1
        procrun.signal(signal.SIGTERM)
        assert procrun.wait(LONG_DEADLINE) == 0
        output = procrun.rest()
    assert not any("spawn_failed" in line for line in output), output


def _pids_running(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


FLOODERS = 50
FLOOD_LINES = 20_000
QUIET_LINES = 10
# Each flooder writes 4096-byte blocks that end mid-line (yes | head, through stdio), as fast
# as it can; the quiet one a line every 50 ms meanwhile. Both are one-shots: procrun exits,
# with 0, once every one of them has finished, and that is what the test waits for.
FAIRNESS = (
    f'flood: yes "F$$" | head -n {FLOOD_LINES}\n'
    f"quiet: sh -c 'for i in $(seq {QUIET_LINES}); do echo \"quiet $i\"; sleep 0.05; done'\n"
)
ONESHOTS = "[processes.flood]\noneshot = true\n[processes.quiet]\noneshot = true\n"


def test_a_quiet_process_is_heard_through_fifty_flooding_ones(tmp_path: Path) -> None:
    out_path = tmp_path / "out"
    with (
        out_path.open("wb") as out,
        Procrun(
            tmp_path, FAIRNESS, "-c", f"flood={FLOODERS}", toml=ONESHOTS, stdout=out.fileno()
        ) as procrun,
    ):
        assert procrun.wait(LONG_DEADLINE) == 0, procrun.stderr
    data = out_path.read_bytes()
    flood = collections.Counter(re.findall(rb"^flood\.\d+ +\| F(\d+)$", data, re.MULTILINE))
    quiet = re.findall(rb"^quiet\.1 +\| quiet (\d+)$", data, re.MULTILINE)
    own = re.findall(rb"^procrun +\| ", data, re.MULTILINE)
    lines = data.count(b"\n")
    assert quiet == [str(n).encode() for n in range(1, QUIET_LINES + 1)]
    assert len(flood) == FLOODERS
    assert set(flood.values()) == {FLOOD_LINES}, "a flooder's lines were lost or garbled"
    assert lines == FLOODERS * FLOOD_LINES + QUIET_LINES + len(own), "garbled lines"

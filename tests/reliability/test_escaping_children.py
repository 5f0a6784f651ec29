"""Children whose descendants leave the process group or the session procrun gave them (issue 6).

What procrun can and cannot reach, on Linux, outside a PID namespace:

- While the leader lives, a descendant that called setpgid(0, 0) or setsid() is out of reach of
  everything procrun sends to the process group: `procrun signal NAME SIG --group` and the SIGKILL
  to the group at the grace deadline or when the leader exits both miss it. procrun does not know
  it exists (it is not procrun's child, nor in a group procrun tracks).
- Once its parent exits it is orphaned, and the kernel re-parents it to procrun, the nearest child
  subreaper. From then on procrun reaps it and, at shutdown, stops it: SIGTERM as soon as the
  shutdown starts or the orphan appears, SIGKILL after ORPHAN_GRACE_SECONDS (2 s).
- It is stopped only at procrun's shutdown: an orphan adopted while procrun runs keeps running
  until then (a restarted leader does not take it back).
- If procrun itself is SIGKILLed, such a descendant survives: the parent-death signal reaches only
  procrun's direct children and the undertaker kills only the groups procrun created. As PID 1 in
  a container the kernel kills it along with everything else in the namespace.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakecontrol import short_temp_dir
from tests.harness import Procrun, child, wait_until_dead

ESCAPER = Path(__file__).parent.parent / "children" / "escaper.py"


@pytest.fixture
def socket_path() -> Iterator[Path]:
    with short_temp_dir() as directory:
        yield directory / "control.sock"


def group_and_session(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[2]), int(fields[3])


def procrun_signal(socket: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "procrun", "signal", *args],
        cwd=cwd,
        env={**os.environ, "PROCRUN_SOCKET": str(socket)},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("how", ["--setpgid", "--setsid"])
def test_a_grandchild_that_left_the_group_is_missed_by_group_signals_but_stopped_once_orphaned(
    tmp_path: Path, socket_path: Path, how: str
) -> None:
    """While its leader lives, a grandchild in a group (or session) of its own gets nothing that
    procrun sends to the leader's group. At shutdown the leader gets TERM and exits; the
    grandchild, now orphaned, is adopted by procrun (child subreaper) and gets its own TERM."""
    env = {"PROCRUN_SOCKET": str(socket_path)}
    with Procrun(tmp_path, f"esc: {child(ESCAPER, how)}\n", env=env) as procrun:
        ready = procrun.wait_for_line(r"leader (\d+) ready grandchild=(\d+)")
        leader, grandchild = int(ready.group(1)), int(ready.group(2))
        leader_group, leader_session = group_and_session(leader)
        group, session = group_and_session(grandchild)
        assert (leader_group, leader_session) == (leader, leader), "procrun made it a leader"
        assert group == grandchild != leader_group
        assert (session == grandchild) if how == "--setsid" else (session == leader_session)

        signalled = procrun_signal(socket_path, tmp_path, "esc", "USR1", "--group")
        assert signalled.returncode == 0, signalled.stderr
        procrun.wait_for_line(rf"leader {leader} got SIGUSR1")
        # A later, direct signal: its line shows the grandchild handles signals, and a USR1 it had
        # pending would have been handled (and printed) by then or right after.
        os.kill(grandchild, signal.SIGHUP)
        procrun.wait_for_line(rf"escaped {grandchild} got SIGHUP")

        procrun.signal(signal.SIGTERM)
        procrun.wait_for_line(rf"leader {leader} got SIGTERM")
        procrun.wait_for_line(rf"orphans.signalled .*\b{grandchild}\b.*signal=SIGTERM")
        procrun.wait_for_line(rf"escaped {grandchild} got SIGTERM")
        assert procrun.wait() == 0
        procrun.rest()
    for pid in (leader, grandchild):
        wait_until_dead(pid, timeout=5)
    assert f"escaped {grandchild} got SIGUSR1" not in procrun.transcript(), (
        "a group signal cannot reach a process that left the group"
    )
    assert "Traceback" not in procrun.stderr


def test_an_escaped_grandchild_that_ignores_term_is_killed_after_the_orphan_grace(
    tmp_path: Path,
) -> None:
    """A grandchild in a session of its own that ignores TERM: the group SIGKILL after the leader
    exits misses it, so procrun, its subreaper, SIGKILLs it after the orphan grace."""
    with Procrun(tmp_path, f"esc: {child(ESCAPER, '--setsid', '--ignore-term')}\n") as procrun:
        ready = procrun.wait_for_line(r"leader (\d+) ready grandchild=(\d+)")
        leader, grandchild = int(ready.group(1)), int(ready.group(2))
        procrun.signal(signal.SIGTERM)
        procrun.wait_for_line(r"process.stopped .*process=esc.1")
        procrun.wait_for_line(rf"escaped {grandchild} got SIGTERM")
        procrun.wait_for_line(rf"orphans.signalled .*\b{grandchild}\b.*signal=SIGKILL")
        assert procrun.wait() == 0
    for pid in (leader, grandchild):
        wait_until_dead(pid, timeout=5)

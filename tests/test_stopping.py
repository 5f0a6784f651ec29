"""Stopping, with real children and real signals: who gets what, graces, escalation, exit codes."""

import signal
from pathlib import Path

from tests.harness import Procrun, child, pid_alive, wait_until_dead

CHILDREN = Path(__file__).parent / "children"
RECORDER = CHILDREN / "recorder.py"


def test_stop_signal_goes_to_the_leader_only_and_the_pool_dies_with_it(tmp_path: Path) -> None:
    with Procrun(tmp_path, f"worker: {child(RECORDER, '--pool', '2')}\n") as procrun:
        ready = procrun.wait_for_line(r"leader (\d+) ready pgid=(\d+) pool=(\d+),(\d+)")
        leader, pgid, *pool = map(int, ready.groups())
        assert leader == pgid, "the program itself must lead its process group"
        procrun.signal(signal.SIGTERM)
        procrun.wait_for_line(rf"leader {leader} got SIGTERM")
        assert procrun.wait() == 0
        for pid in pool:
            wait_until_dead(pid)
        output = procrun.transcript()
    assert "pool" not in "".join(line for line in output.splitlines() if "got SIG" in line), output


def test_a_child_that_ignores_term_is_killed_with_its_group_at_the_grace(tmp_path: Path) -> None:
    toml = """
        [processes.stubborn]
        grace = "300ms"
    """
    procfile = f"stubborn: {child(RECORDER, '--ignore', '--pool', '1')}\n"
    with Procrun(tmp_path, procfile, toml=toml) as procrun:
        ready = procrun.wait_for_line(r"leader (\d+) ready pgid=\d+ pool=(\d+)")
        leader, pool = map(int, ready.groups())
        procrun.signal(signal.SIGTERM)
        procrun.wait_for_line(rf"leader {leader} got SIGTERM")
        procrun.wait_for_line(r"signal.sent .*process=stubborn.1 .*signal=SIGKILL target=group")
        assert procrun.wait() == 128 + signal.SIGKILL, "a kill at the deadline is not a clean stop"
        assert not pid_alive(leader)
        wait_until_dead(pool)


def test_repeated_sigterm_is_one_request(tmp_path: Path) -> None:
    toml = """
        [processes.stubborn]
        grace = "1s"
    """
    with Procrun(tmp_path, f"stubborn: {child(RECORDER, '--ignore')}\n", toml=toml) as procrun:
        leader = int(procrun.wait_for_line(r"leader (\d+) ready").group(1))
        procrun.signal(signal.SIGTERM)
        procrun.wait_for_line(rf"leader {leader} got SIGTERM")
        procrun.signal(signal.SIGTERM)
        procrun.wait_for_line(r"signal.ignored .*shutdown already under way")
        procrun.wait_for_line(r"signal=SIGKILL")
        assert procrun.wait() == 137
    assert procrun.transcript().count("got SIGTERM") == 1


def test_second_ctrl_c_kills_at_once_and_the_first_sends_term_not_int(tmp_path: Path) -> None:
    toml = """
        [processes.web]
        grace = "10m"
    """
    with Procrun(tmp_path, f"web: {child(RECORDER, '--ignore')}\n", toml=toml) as procrun:
        leader = int(procrun.wait_for_line(r"leader (\d+) ready").group(1))
        procrun.signal(signal.SIGINT)
        procrun.wait_for_line(rf"leader {leader} got SIGTERM")
        procrun.signal(signal.SIGINT)
        procrun.wait_for_line(r"shutdown.forced")
        assert procrun.wait() == 137
        assert not pid_alive(leader)
    assert "got SIGINT" not in procrun.transcript()


def test_clean_stop_of_several_processes_in_parallel_exits_zero(tmp_path: Path) -> None:
    procfile = "".join(f"p{n}: {child(RECORDER)}\n" for n in range(3))
    with Procrun(tmp_path, procfile) as procrun:
        for _ in range(3):
            procrun.wait_for_line(r"leader \d+ ready")
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
        lines = procrun.rest()
    assert sum("process.stopped" in line for line in lines) == 3

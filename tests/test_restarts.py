"""Restarts with backoff, give-up, one-shots and the release phase, with real children."""

import signal
from pathlib import Path

from tests.harness import Procrun, child

CHILDREN = Path(__file__).parent / "children"
CRASHER = CHILDREN / "crasher.py"
RECORDER = CHILDREN / "recorder.py"


def test_crash_loop_backs_off_then_gives_up_and_exits_with_the_code(tmp_path: Path) -> None:
    toml = """
        [processes.crasher]
        max_restarts = 3
        backoff = "10ms"
        restart_window = "1m"
    """
    procfile = f"crasher: {child(CRASHER, '7')}\nsteady: {child(RECORDER)}\n"
    with Procrun(tmp_path, procfile, toml=toml) as procrun:
        delays = [
            float(procrun.wait_for_line(r"process.restarting .*delay=([\d.]+)").group(1))
            for _ in range(3)
        ]
        procrun.wait_for_line(r"process.gave_up .*process=crasher.1")
        procrun.wait_for_line(r"leader \d+ got SIGTERM")  # the others are stopped
        assert procrun.wait() == 7
    assert delays == [0.0, 0.01, 0.02]
    assert procrun.transcript().count("started, exiting 7") == 4


def test_give_up_can_leave_the_others_running(tmp_path: Path) -> None:
    toml = """
        on_give_up = "continue"
        [processes.crasher]
        restart = "never"
    """
    procfile = f"crasher: {child(CRASHER, '5')}\nsteady: {child(RECORDER)}\n"
    with Procrun(tmp_path, procfile, toml=toml) as procrun:
        procrun.wait_for_line(r"process.gave_up .*process=crasher.1")
        procrun.wait_for_line(r"leader \d+ ready")
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 5, "a process that gave up is still reported in the exit code"


def test_oneshot_success_does_not_stop_the_others(tmp_path: Path) -> None:
    toml = """
        [processes.once]
        oneshot = true
    """
    procfile = f"once: {child(CRASHER, '0')}\nsteady: {child(RECORDER)}\n"
    with Procrun(tmp_path, procfile, toml=toml) as procrun:
        procrun.wait_for_line(r"process.exited .*process=once.1 .*returncode=0")
        procrun.wait_for_line(r"leader \d+ ready")
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
    assert "process.restarting" not in procrun.transcript()


def test_release_runs_first_and_its_success_starts_the_rest(tmp_path: Path) -> None:
    procfile = f"web: {child(RECORDER)}\nrelease: {child(CRASHER, '0')}\n"
    with Procrun(tmp_path, procfile) as procrun:
        procrun.wait_for_line(r"release.1 \| crasher \d+ started")
        procrun.wait_for_line(r"release.succeeded")
        procrun.wait_for_line(r"web.1 +\| leader \d+ ready")
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0


def test_release_failure_starts_nothing_and_exits_with_its_code(tmp_path: Path) -> None:
    procfile = f"web: {child(RECORDER)}\nrelease: {child(CRASHER, '4')}\n"
    with Procrun(tmp_path, procfile) as procrun:
        procrun.wait_for_line(r"release.failed .*process=release.1 returncode=4")
        assert procrun.wait() == 4
        lines = procrun.rest()
    assert not any(line.startswith("web.1") for line in lines), lines
    assert "restart policy is never" not in procrun.transcript()


def test_no_restart_leaves_a_crash_on_screen(tmp_path: Path) -> None:
    """`--no-restart` for development: nothing that exits is restarted."""
    toml = 'on_give_up = "continue"\n'
    procfile = f"crasher: {child(CRASHER, '4')}\nsteady: {child(RECORDER)}\n"
    with Procrun(tmp_path, procfile, "--no-restart", toml=toml) as procrun:
        gave_up = procrun.wait_for_line(r"process.gave_up .*process=crasher.1.*")
        procrun.wait_for_line(r"leader \d+ ready")
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 4
    assert "restart policy is never" in gave_up.group(0)
    assert "process.restarting" not in procrun.transcript()
    assert procrun.transcript().count("started, exiting 4") == 1

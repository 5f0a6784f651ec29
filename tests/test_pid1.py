"""procrun as PID 1 of a PID namespace (as in a container), and as a child subreaper outside one."""

import os
import signal
from pathlib import Path

import pytest

from tests.harness import Procrun, child, children_of, wait_until_dead

CHILDREN = Path(__file__).parent / "children"
ORPHANER = CHILDREN / "orphaner.py"
RECORDER = CHILDREN / "recorder.py"
CRASHER = CHILDREN / "crasher.py"

# `unshare` forwards no signals, so tests signal the namespace's PID 1 by its host pid. `setsid`
# keeps procrun's kill(0, ...) from reaching processes outside the namespace.
AS_PID1 = ("unshare", "--pid", "--fork", "--mount-proc", "setsid")
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="a PID namespace needs root (unshare --pid); run the suite as root"
)


def pid1_host_pid(procrun: Procrun) -> int:
    """The host pid of the namespace's PID 1 (procrun), the only child of `unshare`."""
    (pid,) = children_of(procrun.proc.pid)
    return pid


@needs_root
def test_as_pid1_orphans_are_reaped_and_sigterm_is_honoured(tmp_path: Path) -> None:
    procfile = f"orphaner: {child(ORPHANER, '--zombie')}\nweb: {child(RECORDER)}\n"
    with Procrun(tmp_path, procfile, "-v", wrapper=AS_PID1) as procrun:
        orphan = procrun.wait_for_line(r"orphan (\d+) exiting").group(1)
        procrun.wait_for_line(rf"orphan.reaped .*pid={orphan}\b")
        procrun.wait_for_line(r"leader \d+ ready")
        os.kill(pid1_host_pid(procrun), signal.SIGTERM)
        procrun.wait_for_line(r"leader \d+ got SIGTERM")
        assert procrun.wait() == 0
    assert procrun.stderr == ""


@needs_root
def test_as_pid1_the_exit_code_is_the_failing_process_code(tmp_path: Path) -> None:
    procfile = f"web: {child(RECORDER)}\nrelease: {child(CRASHER, '9')}\n"
    with Procrun(tmp_path, procfile, wrapper=AS_PID1) as procrun:
        assert procrun.wait() == 9


def test_a_daemon_that_escaped_its_group_is_stopped_at_shutdown(tmp_path: Path) -> None:
    """Outside a namespace procrun is a child subreaper, so a double-forked daemon in its own
    session is re-parented to procrun and stopped with everything else."""
    with Procrun(tmp_path, f"orphaner: {child(ORPHANER, '--daemon')}\n") as procrun:
        daemon = int(procrun.wait_for_line(r"daemon (\d+) ready").group(1))
        procrun.wait_for_line(r"orphaner \d+ ready")
        procrun.signal(signal.SIGTERM)
        procrun.wait_for_line(rf"orphans.signalled .*{daemon}.*signal=SIGTERM")
        assert procrun.wait() == 0
        wait_until_dead(daemon, timeout=5)

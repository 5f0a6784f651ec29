"""A kill that fails with EPERM is reported and retried, never counted as a stop (supervisord
counts it as stopped, #536)."""

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest

from tests.harness import Procrun, wait_until_dead

RECORDER = Path(__file__).parent / "children" / "recorder.py"
# procrun keeps uid 0 but loses CAP_KILL, so it may only signal processes of its own uid.
WITHOUT_CAP_KILL = ("setpriv", "--bounding-set=-kill", "--inh-caps=-kill")


@pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to drop a child to another uid; run the suite as root"
)
def test_a_denied_kill_is_reported_retried_and_not_counted_as_stopped(tmp_path: Path) -> None:
    # The child switches to nobody (it keeps CAP_SETUID), so procrun without CAP_KILL gets EPERM.
    # /usr/bin/python3: the test's own interpreter may live under a directory nobody cannot enter.
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    # ...and the checkout may live under a directory nobody cannot enter either.
    readable = Path(tempfile.mkdtemp(prefix="procrun-test-"))
    readable.chmod(0o755)
    recorder = Path(shutil.copy(RECORDER, readable / "recorder.py"))
    recorder.chmod(0o644)
    command = f"setpriv --reuid=65534 --regid=65534 --clear-groups {python} -u {recorder} --ignore"
    toml = '[processes.other]\ngrace = "200ms"\n'
    with Procrun(tmp_path, f"other: {command}\n", toml=toml, wrapper=WITHOUT_CAP_KILL) as procrun:
        leader = int(procrun.wait_for_line(r"leader (\d+) ready").group(1))
        procrun.signal(signal.SIGTERM)
        procrun.wait_for_line(r"signal.denied .*signal=SIGTERM")
        procrun.wait_for_line(r"signal.denied .*signal=SIGKILL target=group")
        procrun.wait_for_line(r"signal.denied .*signal=SIGKILL target=group")  # retried
        assert procrun.proc.poll() is None, "procrun must not give up on a live process"
        os.kill(leader, signal.SIGKILL)  # the test still has CAP_KILL
        wait_until_dead(leader)
        procrun.wait_for_line(r"process.stopped .*process=other.1")
        assert procrun.wait() == 1
    shutil.rmtree(readable)

"""procrun itself SIGKILLed (not as PID 1): nothing it started may survive (issue 6)."""

import signal
from pathlib import Path

from tests.harness import Procrun, child, wait_until_dead

RECORDER = Path(__file__).parent.parent / "children" / "recorder.py"


def test_no_child_or_grandchild_survives_a_sigkilled_procrun(tmp_path: Path) -> None:
    # A compound command: sh leads the group, `sleep` is a grandchild in the same group that no
    # parent-death signal reaches.
    procfile = (
        f"compound: sleep 1000 & echo grandchild $!; wait\npool: {child(RECORDER, '--pool', '2')}\n"
    )
    with Procrun(tmp_path, procfile) as procrun:
        grandchild = int(procrun.wait_for_line(r"compound.1 +\| grandchild (\d+)").group(1))
        ready = procrun.wait_for_line(r"leader (\d+) ready pgid=\d+ pool=(\d+),(\d+)")
        procrun.wait_for_line(r"process.running .*process=pool.1")
        procrun.proc.send_signal(signal.SIGKILL)
        procrun.proc.wait()
        for pid in (grandchild, *map(int, ready.groups())):
            wait_until_dead(pid, timeout=10)

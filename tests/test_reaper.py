"""The reaper's view of orphans: a zombie waiting to be reaped is not signalled as if alive."""

import subprocess
import sys
import textwrap


def test_signalling_orphans_skips_a_zombie() -> None:
    """In a process of its own (whose only child is the zombie), so that nothing of the test
    runner's is signalled: one child that has exited and is not reaped yet, one alive."""
    script = textwrap.dedent(
        """
        import os, signal, time
        import structlog
        from procrun.reaper import Reaper

        zombie = os.fork()
        if zombie == 0:
            os._exit(0)
        alive = os.fork()
        if alive == 0:
            time.sleep(60)
            os._exit(0)
        while open(f"/proc/{zombie}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            os.sched_yield()  # until the kernel has it as a zombie
        with structlog.testing.capture_logs() as logs:
            signalled = Reaper(adopt_orphans=True).signal_orphans(signal.SIGTERM)
        os.waitpid(alive, 0)
        os.waitpid(zombie, 0)
        print(signalled == [alive], [e.get("pids") for e in logs] == [[alive]])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.split() == ["True", "True"], out.stdout + out.stderr

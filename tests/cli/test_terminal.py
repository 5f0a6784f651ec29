"""procrun on a terminal, as a developer runs it: Ctrl-C typed into a real pseudo-terminal stops
the formation and, while a long grace runs, says what it waits for; a second Ctrl-C forces it."""

import fcntl
import os
import pty
import re
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.harness import DEADLINE_SECONDS, child

RECORDER = Path(__file__).parents[1] / "children" / "recorder.py"
CTRL_C = b"\x03"


def _take_the_terminal() -> None:
    """In the child: make the pty (its stdin) the controlling terminal, so Ctrl-C signals it."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    def __init__(self, directory: Path, procfile: str, toml: str) -> None:
        (directory / "Procfile").write_text(procfile)
        (directory / "procrun.toml").write_text(toml)
        self.master, replica = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROCRUN_")}
        env["NO_COLOR"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "procrun", "start"],
            cwd=directory,
            env=env,
            stdin=replica,
            stdout=replica,
            stderr=replica,
            start_new_session=True,  # its own session, with the pty as controlling terminal
            preexec_fn=_take_the_terminal,
        )
        os.close(replica)
        self.screen = b""

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait_for(self, pattern: str) -> re.Match[bytes]:
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not (match := regex.search(self.screen)):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"no {pattern!r} on the screen:\n{self.screen.decode()}")
            try:
                self.screen += os.read(self.master, 65536)
            except OSError:  # the other side closed: nothing more will come
                raise AssertionError(f"no {pattern!r}:\n{self.screen.decode()}") from None
        return match

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def test_ctrl_c_says_what_it_waits_for_and_a_second_one_forces(tmp_path: Path) -> None:
    toml = '[processes.worker]\ngrace = "60s"\nsecond_signal = "QUIT"\n'
    terminal = Terminal(tmp_path, f"worker: {child(RECORDER, '--ignore')}\n", toml)
    try:
        terminal.wait_for(r"leader \d+ ready")
        terminal.type(CTRL_C)
        terminal.wait_for(r"leader \d+ got SIGTERM")
        waiting = terminal.wait_for(r"shutdown\.waiting[^\n]*")
        assert b"worker.1 (SIGQUIT in 49 s, SIGKILL in 59 s)" in waiting.group(0)
        assert b"Ctrl-C again to force" in waiting.group(0)
        terminal.type(CTRL_C)
        forced = terminal.wait_for(r"shutdown\.forced[^\n]*")
        assert b"worker.1 gets SIGQUIT now, SIGKILL in 3 s" in forced.group(0)
        terminal.wait_for(r"leader \d+ got SIGQUIT")
        terminal.wait_for(r"procrun\.exited")
        assert terminal.proc.wait(DEADLINE_SECONDS) == 128 + 9
    finally:
        terminal.close()
    assert b"Traceback" not in terminal.screen

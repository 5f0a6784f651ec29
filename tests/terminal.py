"""A command on a real pseudo-terminal, as a developer runs it: the pty is the controlling
terminal of the command's session, so a typed Ctrl-C signals its foreground process group."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.harness import DEADLINE_SECONDS

CTRL_C = b"\x03"


def _take_the_terminal() -> None:
    """In the child: make the pty (its stdin) the controlling terminal, so Ctrl-C signals it."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    def __init__(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
        self.master, replica = pty.openpty()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
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
            except OSError:  # every replica closed: nothing more will come
                raise AssertionError(f"no {pattern!r}:\n{self.screen.decode()}") from None
        return match

    def wait(self) -> int:
        return self.proc.wait(DEADLINE_SECONDS)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)

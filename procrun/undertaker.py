"""Kills what procrun leaves behind if procrun itself dies without stopping its children.

A parent-death signal reaches only procrun's direct children (each group's leader); their own
children (a compound command's background job, a server's workers) would outlive a SIGKILLed
procrun. So, when procrun is not PID 1, a tiny awk process in its own session holds the read end
of a pipe and keeps the set of live process groups that procrun reports as it spawns and reaps
(`+ <pgid>` / `- <pgid>` lines). When procrun dies, by any means, the pipe reaches end-of-file and
awk SIGKILLs every group still listed. After a clean stop the set is empty and awk just exits.

As PID 1 none of this is needed: when PID 1 exits, the kernel kills the whole namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import structlog

log = structlog.get_logger()

# Input is processed in whatever chunks awk reads: only the state at end-of-file matters.
_AWK_PROGRAM = (
    '$1 == "+" { groups[$2] = 1 } '
    '$1 == "-" { delete groups[$2] } '
    'END { for (g in groups) system("kill -9 -" g " 2>/dev/null") }'
)


class Undertaker:
    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self.pid = process.pid
        self._process = process
        self._pipe: int | None = pipe

    @classmethod
    def start(cls) -> Undertaker | None:
        awk = shutil.which("awk")
        if awk is None:
            log.warning("undertaker.unavailable", reason="no awk on PATH")
            return None
        read_end, write_end = os.pipe()  # both close-on-exec: awk gets only its stdin
        try:
            process = subprocess.Popen(
                [awk, _AWK_PROGRAM],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # out of reach of a terminal's Ctrl-C and group signals
            )
        except OSError as error:
            os.close(write_end)
            log.warning("undertaker.unavailable", reason=str(error))
            return None
        finally:
            os.close(read_end)
        return cls(process, write_end)

    def track(self, pgid: int) -> None:
        self._send(f"+ {pgid}\n")

    def forget(self, pgid: int) -> None:
        self._send(f"- {pgid}\n")

    def _send(self, line: str) -> None:
        if self._pipe is None:
            return
        try:
            os.write(self._pipe, line.encode())
        except OSError as error:  # awk is gone: nothing to do but say so once
            log.warning("undertaker.lost", error=str(error))
            self.close()

    def close(self) -> None:
        """Let awk exit (its set is empty after a clean stop)."""
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None

    def exited(self, returncode: int) -> None:
        """The reaper collected awk (it exits after close(), or if killed)."""
        self._process.returncode = returncode
        if self._pipe is not None:
            log.warning("undertaker.lost", returncode=returncode)
            self.close()

"""Kills what procrun leaves behind if procrun itself dies without stopping its children.

A parent-death signal reaches only procrun's direct children (each group's leader); their own
children (a compound command's background job, a server's workers) would outlive a SIGKILLed
procrun. So, when procrun is not PID 1, a tiny shell process in its own session holds the read
end of a pipe and keeps the set of live process groups that procrun reports as it spawns and reaps
(`+ <pgid>` / `- <pgid>` lines). When procrun dies, by any means, the pipe reaches end-of-file and
the shell SIGKILLs every group still listed. After a clean stop the set is empty and it just exits.
It is a POSIX shell script because /bin/sh is already required (it runs every command) and is the
lightest interpreter at hand: dash idles in ~1.6 MiB of RSS, gawk in ~3.6 MiB.

As PID 1 none of this is needed: when PID 1 exits, the kernel kills the whole namespace.
"""

from __future__ import annotations

import os
import subprocess

import structlog

from procrun.settings import SHELL

log = structlog.get_logger()

# The set is a space-padded string (" 12 34 "): removal cuts around the first " <pgid> ". Only
# the state at end-of-file matters; the kill is the shell's builtin, so no fork per group.
_SCRIPT = """
groups=' '
while read -r op pgid; do
  case $op in
    +) groups="$groups$pgid " ;;
    -) case $groups in *" $pgid "*) groups="${groups%% $pgid *} ${groups#* $pgid }" ;; esac ;;
  esac
done
for group in $groups; do kill -9 -"$group" 2>/dev/null; done
"""
# $0 of the script: what `ps` shows after the script, so the process explains itself.
PROGRAM_NAME = "procrun-undertaker"


class Undertaker:
    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self.pid = process.pid
        self._process = process
        self._pipe: int | None = pipe

    @classmethod
    def start(cls) -> Undertaker | None:
        read_end, write_end = os.pipe()  # both close-on-exec: the shell gets only its stdin
        try:
            process = subprocess.Popen(
                [SHELL, "-c", _SCRIPT, PROGRAM_NAME],
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
        except OSError as error:  # the undertaker is gone: nothing to do but say so once
            log.warning("undertaker.lost", error=str(error))
            self.close()

    def close(self) -> None:
        """Let the undertaker exit (its set is empty after a clean stop)."""
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None

    def exited(self, returncode: int) -> None:
        """The reaper collected the undertaker (it exits after close(), or if killed)."""
        self._process.returncode = returncode
        if self._pipe is not None:
            log.warning("undertaker.lost", returncode=returncode)
            self.close()

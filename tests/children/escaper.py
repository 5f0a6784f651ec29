"""Leads its process group but leaves a grandchild outside it, as job runners and daemons do.

--setpgid:     the grandchild moves to a process group of its own (same session).
--setsid:      the grandchild starts a session (and so a process group) of its own.
--ignore-term: the grandchild records TERM and keeps running (only SIGKILL ends it).

The grandchild prints `escaped <pid> ready pgid=<pgid> sid=<sid>` once it has left the group and
then `escaped <pid> got SIG...` for each catchable stop signal or USR1 it gets; TERM ends it unless
--ignore-term. The leader prints `leader <pid> ready grandchild=<pid>` after the grandchild has
left, records its own signals the same way, and exits 0 on TERM.
"""

import os
import signal
import sys
import time

role = "leader"
ignore_term = "--ignore-term" in sys.argv


def say(text: str) -> None:
    os.write(1, f"{role} {os.getpid()} {text}\n".encode())


def on_signal(signum: int, frame: object) -> None:
    say(f"got {signal.Signals(signum).name}")
    if signum == signal.SIGTERM and not (role == "escaped" and ignore_term):
        os._exit(0)


for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1):
    signal.signal(sig, on_signal)

moved_read, moved_write = os.pipe()
grandchild = os.fork()
if grandchild == 0:
    role = "escaped"
    os.close(moved_read)
    if "--setsid" in sys.argv:
        os.setsid()
    else:
        os.setpgid(0, 0)
    say(f"ready pgid={os.getpgrp()} sid={os.getsid(0)}")
    os.write(moved_write, b"x")
    os.close(moved_write)
    while True:
        time.sleep(3600)
os.close(moved_write)
os.read(moved_read, 1)  # the grandchild has left the group
os.close(moved_read)
say(f"ready grandchild={grandchild}")
while True:
    time.sleep(3600)

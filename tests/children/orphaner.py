"""Leaves descendants behind, as careless programs do, then idles.

--zombie: a grandchild exits after its parent did, so it becomes an orphan zombie that only
          PID 1 (or a subreaper) can reap. It prints `orphan <pid> exiting` first.
--daemon: a double-forked grandchild in its own session (escaping the process group) that lives on.
          It prints `daemon <pid> ready`.
"""

import os
import sys
import time

if os.fork() == 0:
    grandchild = os.fork()
    if grandchild == 0:
        if "--daemon" in sys.argv:
            os.setsid()
            os.write(1, f"daemon {os.getpid()} ready\n".encode())
            while True:
                time.sleep(3600)
        os.read(os.open("/dev/null", os.O_RDONLY), 1)  # returns at once
        os.write(1, f"orphan {os.getpid()} exiting\n".encode())
        os._exit(0)
    os._exit(0)  # the grandchild is orphaned now
os.wait()
os.write(1, f"orphaner {os.getpid()} ready\n".encode())
while True:
    time.sleep(3600)

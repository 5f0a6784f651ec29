"""Prints what a child inherited: stdin, process group and session.

(Signal state is inspected with grep: the Python runtime ignores SIGPIPE and SIGXFSZ itself.)
"""

import os
import sys

stdin = os.readlink("/proc/self/fd/0")
eof = sys.stdin.read() == ""
print(
    f"inspector stdin={stdin} eof={eof} "
    f"leader={os.getpgrp() == os.getpid()} session={os.getsid(0) == os.getpid()}",
    flush=True,
)

"""Writes a burst of numbered lines whenever it gets SIGUSR1, far more than a pipe holds, so a
reader that stops reading makes it block on its own write.

Prints `burster <pid> ready`, then per burst `burst <pid>.<n> line <i> xxx...` for i in
0..LINES-1 and `burst <pid>.<n> done lines=<LINES>`. TERM ends it.
"""

import os
import signal
import sys

LINES = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
PAD = "x" * 100

# Taken with sigwait, so a request that comes during a burst is never missed (and TERM too:
# sigwait is not interrupted by a signal outside its set).
WANTED = {signal.SIGUSR1, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, WANTED)
os.write(1, f"burster {os.getpid()} ready\n".encode())
burst = 0
while True:
    if signal.sigwait(WANTED) == signal.SIGTERM:
        sys.exit(0)
    burst += 1
    for i in range(LINES):
        os.write(1, f"burst {os.getpid()}.{burst} line {i} {PAD}\n".encode())
    os.write(1, f"burst {os.getpid()}.{burst} done lines={LINES}\n".encode())

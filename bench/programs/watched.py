"""A process under `procrun start --watch` for the watch scenario.

usage: watched.py STAMPS

Prints READY, then waits; on SIGTERM it writes the time.monotonic() at which the signal arrived
(the system-wide monotonic clock, comparable across processes) to STAMPS/term-<n>, n counting
its predecessors, and exits.
"""

import os
import signal
import sys
import time

stamps = sys.argv[1]


def stop(signum: int, frame: object) -> None:
    arrived = time.monotonic()
    count = len([name for name in os.listdir(stamps) if name.startswith("term-")])
    with open(os.path.join(stamps, f"term-{count}"), "w") as stamp:
        stamp.write(repr(arrived))
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
print(f"READY watched {os.getpid()}", flush=True)
while True:
    time.sleep(3600)

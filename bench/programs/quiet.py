"""The quiet child of the fairness scenario: one line a second, stamped when it is written.

usage: python quiet.py ID

Prints `READY ID PID`, waits for SIGUSR1 (sent with the flooders'), then every second writes
`QUIET SEQUENCE NANOSECONDS`, the CLOCK_MONOTONIC time of the write: the benchmark, on the same
clock, subtracts it from the line's arrival. Standard library only, run with `python -I -S`.
"""

from __future__ import annotations

import os
import signal
import sys
import time

INTERVAL_SECONDS = 1.0


def main(argv: list[str]) -> int:
    child = argv[0]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    os.write(1, f"READY {child} {os.getpid()}\n".encode())
    signal.sigwait({signal.SIGUSR1})
    sequence = 0
    next_at = time.monotonic()
    while True:
        stamp = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        os.write(1, b"QUIET %d %d\n" % (sequence, stamp))
        sequence += 1
        next_at += INTERVAL_SECONDS
        time.sleep(max(next_at - time.monotonic(), 0.0))  # a fixed rate is the program's job


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

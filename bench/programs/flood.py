"""A flooder for the fairness scenario: numbered lines as fast as it can, one write each.

usage: python flood.py NAME

Prints `READY NAME PID` and waits for SIGUSR1, so the benchmark starts every flooder at once
whatever way the tool started them. Then writes `FID SEQUENCE xxx...x` (60 bytes with the
newline, one os.write each: a logger on an unbuffered stream; ID is its pid in 7 digits,
so instances differ) until SIGUSR2, then `FLOODED PID COUNT` (how many it wrote, for the
benchmark to count the lost) and waits to be stopped. Standard library only, run with
`python -I -S`.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

LINE_BYTES = 60
stopping = False


def _stop(signum: int, frame: FrameType | None) -> None:
    global stopping
    stopping = True


def write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def main(argv: list[str]) -> int:
    name, child = argv[0], os.getpid()
    head = b"F%07d " % child
    padding = b"x" * (LINE_BYTES - len(head) - 9)  # 7 digits, a space, the newline
    signal.signal(signal.SIGUSR2, _stop)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    write_all(f"READY {name} {child}\n".encode())
    signal.sigwait({signal.SIGUSR1})
    written = 0
    while not stopping:
        write_all(b"%s%07d %s\n" % (head, written, padding))
        written += 1
    write_all(f"FLOODED {child} {written}\n".encode())
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

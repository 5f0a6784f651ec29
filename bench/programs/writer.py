"""The log-relay child: writes numbered 60-byte lines as fast as it can, then waits for a signal.

usage: python writer.py lines|blocks ID COUNT

Every line is `ID SEQUENCE xxx...x` (60 bytes with the newline), so a reader can tell, with no
prefix at all, which child wrote it, whether it arrived whole, and which lines are missing.
`lines` makes one write per line (a logger on an unbuffered stream); `blocks` writes the same
bytes in 4096-byte slices that end mid-line (C stdio writing to a pipe).

The child builds its lines first, prints `READY ID PID` and waits for SIGUSR1, so the benchmark
can start all writers at once whatever way the tool started them. After the last line it writes
`DONE ID` and sleeps until it is signalled: a child that exited would make honcho stop the
others, and the benchmark, not the child, decides when the run ends.

Standard library only, run with `python -I -S`: it must start fast and import nothing of ours.
"""

from __future__ import annotations

import os
import signal
import sys

LINE_BYTES = 60
BLOCK_BYTES = 4096


def numbered_line(child: str, seq: int) -> bytes:
    head = f"{child} {seq:07d} ".encode()
    return head + b"x" * (LINE_BYTES - 1 - len(head)) + b"\n"


def write_all(data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def main(argv: list[str]) -> int:
    mode, child, count = argv[0], argv[1], int(argv[2])
    if mode not in ("lines", "blocks"):
        print(f"writer.py: unknown mode {mode!r}", file=sys.stderr)
        return 2
    lines = [numbered_line(child, seq) for seq in range(count)]
    data = memoryview(b"".join(lines))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    write_all(f"READY {child} {os.getpid()}\n".encode())
    signal.sigwait({signal.SIGUSR1})
    if mode == "lines":
        for line in lines:
            write_all(line)
    else:
        for start in range(0, len(data), BLOCK_BYTES):
            write_all(data[start : start + BLOCK_BYTES])
    write_all(f"DONE {child}\n".encode())
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

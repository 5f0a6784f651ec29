"""procrun/output/heap.py against the real glibc allocator, in a fresh interpreter each time."""

import os
import subprocess
import sys

import pytest

# Counts glibc's mmapped chunks (mallinfo2's hblks) around an allocation of 512 KiB.
PROBE = """
import ctypes, sys
from procrun.output.heap import keep_heap_for_bursts

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2

def mmapped_by_allocation() -> int:
    before = mallinfo2().hblks
    block = bytes(512 * 1024)
    return mallinfo2().hblks - before

print(mmapped_by_allocation(), keep_heap_for_bursts(), keep_heap_for_bursts(),
      mmapped_by_allocation())
"""

glibc_only = pytest.mark.skipif(
    not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"),
    reason="the thresholds are glibc's",
)


@glibc_only
def test_after_a_burst_large_blocks_come_from_the_heap() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.split() == ["1", "True", "True", "0"]

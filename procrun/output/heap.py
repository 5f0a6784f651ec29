"""The C heap during a log burst: keep it, rather than hand it back to the kernel after every read.

A child that floods its pipe makes each relay pass allocate a few blocks of about 256 KiB (the
read, the prefixed copy). glibc serves blocks that size with mmap, or from the top of the heap
once its threshold adapts, and free() trims the top straight back: either way every pass faults
its pages in again. Relaying 36 MB cost 16,000 page faults, half of procrun's CPU. With the
thresholds below the blocks stay on the heap and the faults drop to about 1,000.

Only from the first burst on, so a quiet supervisor's memory stays as glibc's defaults keep it;
glibc only, since mallopt's parameter numbers are glibc's (musl ignores them). The price: up to
TRIM_THRESHOLD_BYTES of free heap may stay resident after a burst.
"""

from __future__ import annotations

import functools
import os

# Glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Larger than a relay pass's blocks (a 256 KiB read, its prefixed copy); setting either turns
# glibc's adaptive thresholds off.
MMAP_THRESHOLD_BYTES = 1024 * 1024
TRIM_THRESHOLD_BYTES = 4 * 1024 * 1024


# Cached: the first burst decides, later bursts (and non-glibc systems) pay nothing.
@functools.cache
def keep_heap_for_bursts() -> bool:
    """Apply the thresholds (once per process); whether they are in force."""
    if not _is_glibc():
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    # mallopt returns 1 on success, 0 on error.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def _is_glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):  # no such name outside glibc
        return False

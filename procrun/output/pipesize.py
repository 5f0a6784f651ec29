"""Pipe capacity. Linux pipes hold 64 KiB by default, and a relay pays a pass through the event
loop (a wake-up, a read, a write) per pipe-full: a larger pipe means fewer, bigger batches when a
child writes fast. Every enlarged pipe is unswappable kernel memory counted against the user's
pipe quota (fs.pipe-user-pages-soft, 64 MiB by default, past which Linux gives new pipes a single
page), so callers keep their total small."""

from __future__ import annotations

import fcntl


def grow_pipe(fd: int, size: int) -> None:
    """Grow the pipe to `size` bytes, never shrink it. A refusal (above fs.pipe-max-size, over
    the quota, no F_SETPIPE_SZ outside Linux) leaves it as it is."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    get_size = getattr(fcntl, "F_GETPIPE_SZ", None)
    if set_size is None or get_size is None:
        return
    try:
        if fcntl.fcntl(fd, get_size) < size:
            fcntl.fcntl(fd, set_size, size)
    except OSError:
        pass

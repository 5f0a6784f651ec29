"""Receiving signals, delivering them, and the child's side of spawning.

Design note
-----------
Who gets which signal:
  * procrun receives TERM/INT/HUP (a stop request) and CHLD (a child changed state). The handlers
    only record the signal into the event loop (``loop.add_signal_handler``); the supervisor
    decides. They are installed before anything is spawned: as PID 1 a signal without a handler is
    ignored, even the platform's SIGTERM.
  * Each child is the leader of its own session and process group, so a terminal's Ctrl-C reaches
    procrun only, and procrun picks what each child gets (TERM for the web server, not INT).
  * The stop signal goes to the leader's pid only: a process-group TERM reaches Celery's prefork
    children, which then abort the task they run. SIGKILL, at the deadline, goes to the whole group:
    nothing may outlive a stop.

How reaping works (procrun/reaper.py):
  procrun owns all waiting. It never uses asyncio's child watchers (whose blanket or per-thread
  waits race with ours); on every SIGCHLD it polls each pid it spawned with ``waitid(WNOWAIT)``.
  An exited leader is still a zombie at that point, so its pid, and with it the process-group id,
  cannot be reused: procrun SIGKILLs whatever is left of the group, and only then reaps the leader.
  Orphans re-parented to procrun (as PID 1, or as a child subreaper on Linux) are found through
  ``/proc/self/task/*/children`` and reaped by pid, so no exit status of an owned child is stolen.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


# --- receiving -----------------------------------------------------------------------------------


@contextlib.contextmanager
def capture_signals(
    loop: asyncio.AbstractEventLoop,
    signals: Iterable[signal.Signals],
    on_signal: Callable[[signal.Signals], None],
) -> Iterator[None]:
    """Route `signals` into the loop as calls to `on_signal`; put the previous handlers back after.

    ``loop.remove_signal_handler`` restores SIG_DFL, not what was there before, hence the record.
    """
    previous: dict[signal.Signals, _Handler] = {}
    try:
        for sig in signals:
            previous[sig] = signal.getsignal(sig)
            loop.add_signal_handler(sig, on_signal, sig)
        yield
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


# --- delivering ----------------------------------------------------------------------------------


class Delivery(enum.Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # no such process (group): it has already exited
    DENIED = "denied"  # EPERM: the process lives on; never count this as stopped


def send_signal(pid: int, sig: signal.Signals) -> Delivery:
    return _deliver(os.kill, pid, sig)


def send_group_signal(pgid: int, sig: signal.Signals) -> Delivery:
    return _deliver(os.killpg, pgid, sig)


def _deliver(kill: Callable[[int, int], None], target: int, sig: signal.Signals) -> Delivery:
    try:
        kill(target, sig)
    except ProcessLookupError:
        return Delivery.GONE
    except PermissionError:
        return Delivery.DENIED
    return Delivery.DELIVERED


# --- the child's side of spawning --------------------------------------------------------------


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] = libc.prctl
    return prctl


# Looked up once, in the parent: the child between fork and exec should do as little as possible.
_PRCTL = _load_prctl()
CATCHABLE = frozenset(
    sig for sig in signal.valid_signals() if sig not in (signal.SIGKILL, signal.SIGSTOP)
)


def reset_signals_in_child(parent_pid: int) -> None:
    """Run between fork and exec (the parent has blocked every signal around the fork): give the
    program a clean signal state and tie its life to procrun's.

    Ignored dispositions survive exec and the mask is inherited, so a procrun started under nohup or
    from a shell's background job would otherwise hand SIG_IGN for HUP/INT/QUIT to every program.
    The parent-death signal makes the kernel kill the child if procrun itself is SIGKILLed; if
    procrun died before it was armed, the child is already orphaned and ends itself.
    """
    for sig in CATCHABLE:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux >= 3.4) so they can be reaped and stopped, not leaked."""
    if _PRCTL is None:
        return False
    return _PRCTL(PR_SET_CHILD_SUBREAPER, 1) == 0

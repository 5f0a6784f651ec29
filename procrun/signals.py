"""Receiving signals, delivering them, and the child's side of spawning.

Design note
-----------
Who gets which signal:
  * procrun receives TERM/INT/HUP (a stop request) and CHLD (a child changed state). The handlers
    only record the signal into the event loop (``capture_signals``: Python's handlers, which
    never lose a signal in a storm, and a wake-up socket); the supervisor decides. They are
    installed before anything is spawned: as PID 1 a signal without a handler is ignored, even
    the platform's SIGTERM.
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
import functools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from procrun.settings import SHELL

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

    Not ``loop.add_signal_handler``: asyncio learns which signal came from one byte per signal in
    its wake-up socket, and in a storm (hundreds of children exiting at once) the socket fills,
    bytes are dropped ("Exception ignored when trying to write to the signal wakeup fd") and so
    are the signals; a lost SIGCHLD is a child never reaped, a lost SIGTERM a stop never made.
    Here the wake-up socket only wakes the loop, so a dropped byte is harmless, and Python's own
    handlers say which signal came: they coalesce repeats but never lose a signal.
    """
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    wake_write.setblocking(False)
    previous_handlers: dict[signal.Signals, _Handler] = {}
    previous_wakeup = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
    loop.add_reader(wake_read.fileno(), _drain, wake_read)

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(on_signal, signal.Signals(signum))

    try:
        for sig in signals:
            previous_handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)
        yield
    finally:
        for sig, previous in previous_handlers.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(previous_wakeup)
        loop.remove_reader(wake_read.fileno())
        wake_read.close()
        wake_write.close()


def _drain(wake: socket.socket) -> None:
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while wake.recv(4096):
            pass


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


# Ignored by Python itself at start-up; Popen's restore_signals puts them back to SIG_DFL.
_RESTORED_BY_POPEN = frozenset({signal.SIGPIPE, signal.SIGXFSZ})


def inherits_cleanly() -> bool:
    """Whether a child forked now would exec with a clean signal state without any code of ours
    between fork and exec: nothing blocked and nothing ignored but what Popen restores. Exec
    itself resets handled signals; only ignored dispositions and the mask survive it."""
    if signal.pthread_sigmask(signal.SIG_BLOCK, ()):
        return False
    return not any(
        signal.getsignal(sig) is signal.SIG_IGN for sig in CATCHABLE - _RESTORED_BY_POPEN
    )


def spawn_in_new_session(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, stdout: int
) -> subprocess.Popen[bytes]:
    """Start `argv` leading a new session, output to `stdout`, with a clean signal state.
    Blocking, but brief: Popen returns once exec has succeeded or failed (OSError,
    SubprocessError).

    Usually procrun's own signal state is clean to inherit, and Popen spawns with vfork: it
    blocks every signal around the vfork and its child resets the handlers before it restores
    the mask, all in C. A Python preexec_fn would rule vfork out and cost a full fork of procrun
    per child (about 14 ms against 2 ms each, 1,000 children on a loaded machine). What this
    path gives up is the leader's parent-death signal, a second guard: the undertaker kills
    every group if procrun dies (undertaker.py), and as PID 1 the kernel does.

    When procrun itself was started with signals ignored or blocked (nohup, a shell's
    background job), the child gets them reset between fork and exec by reset_signals_in_child,
    with every signal blocked across the fork so none runs procrun's handlers in the child.
    """
    clean = inherits_cleanly()
    previous_mask = None if clean else signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            restore_signals=True,
            preexec_fn=None if clean else functools.partial(reset_signals_in_child, os.getpid()),
        )
    finally:
        if previous_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


_SHELL_EXE = os.path.realpath(SHELL)


def runs_shell(pid: int) -> bool:
    """Whether `pid` still runs /bin/sh (it has not exec'd its program yet)."""
    try:
        return os.readlink(f"/proc/{pid}/exe") == _SHELL_EXE
    except OSError:  # gone, or not Linux: treat it as the program
        return False


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux >= 3.4) so they can be reaped and stopped, not leaked."""
    if _PRCTL is None:
        return False
    return _PRCTL(PR_SET_CHILD_SUBREAPER, 1) == 0

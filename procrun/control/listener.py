"""Taking and giving back the control socket's path in the file system.

A socket file outlives a supervisor that was SIGKILLed. At start, a socket nobody listens on is
such a leftover and is replaced; one with a live server is left alone (the caller refuses to
start); anything that is not a socket is never deleted. At close, the file is removed only if it
is still the one we bound, so a supervisor that lost its path to another one does not remove it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from procrun.control.paths import SOCKET_ENV
from procrun.errors import ProcrunError

SOCKET_MODE = 0o600
# Generous: asyncio's connect to a Unix socket whose backlog is full "succeeds" unconnected.
LISTEN_BACKLOG = 512


@dataclass(frozen=True)
class BoundSocket:
    """A listening Unix socket and the identity of the file it created."""

    sock: socket.socket
    path: Path
    device: int
    inode: int

    def remove(self) -> None:
        """Unlink the socket file if it is still ours (the socket itself is not closed)."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if (info.st_dev, info.st_ino) == (self.device, self.inode):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def bind_socket(path: Path) -> BoundSocket | None:
    """Listen at `path` (mode 0600), replacing a stale socket; None if a live server has it.

    ProcrunError if `path` is not a socket or cannot be bound.
    """
    with _directory_lock(path.parent):
        if existing_socket(path) == "live":
            return None
        with contextlib.suppress(FileNotFoundError):  # stale: its server is gone
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # The umask covers the moment between bind and chmod (process-wide, but restored
            # before anything else in this thread runs); the chmod covers platforms that
            # ignore the umask for sockets.
            previous_umask = os.umask(0o177)
            try:
                sock.bind(os.fspath(path))
            finally:
                os.umask(previous_umask)
        except OSError as error:
            sock.close()
            raise _cannot_listen(path, error) from None
        info = os.stat(path)
        bound = BoundSocket(sock, path, info.st_dev, info.st_ino)
        try:
            os.chmod(path, SOCKET_MODE)
            sock.listen(LISTEN_BACKLOG)
        except OSError as error:
            sock.close()
            bound.remove()
            raise _cannot_listen(path, error) from None
        return bound


def remove_stale_sockets(directory: Path, suffix: str) -> list[Path]:
    """Remove the sockets in `directory` that nobody listens on (left by supervisors that were
    SIGKILLed), under the directory lock, so a supervisor binding its socket right now (bound,
    not yet listening, which looks the same) is never caught; the paths removed."""
    removed: list[Path] = []
    with _directory_lock(directory):
        for path in sorted(directory.glob(f"*{suffix}")):
            try:
                stale = existing_socket(path) == "stale"
            except ProcrunError:  # not a socket: never ours to delete
                continue
            if stale:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                removed.append(path)
    return removed


def existing_socket(path: Path) -> Literal["missing", "stale", "live"]:
    """What is at `path`: nothing, a socket nobody listens on, or a live server."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    if not stat.S_ISSOCK(info.st_mode):
        raise ProcrunError(
            f"{path} exists and is not a socket; procrun will not delete it: remove it yourself "
            f"or set {SOCKET_ENV} to another path"
        )
    # Non-blocking: a Unix connect succeeds, is refused, or finds the backlog full (still live).
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(os.fspath(path))
        except ConnectionRefusedError:
            return "stale"
        except FileNotFoundError:
            return "missing"
        except BlockingIOError:
            return "live"
        except OSError as error:
            raise ProcrunError(
                f"cannot check the existing socket {path}: {error.strerror or error}"
            ) from None
    return "live"


def _cannot_listen(path: Path, error: OSError) -> ProcrunError:
    return ProcrunError(
        f"cannot listen on {path}: {error.strerror or error}; set {SOCKET_ENV} to another path"
    )


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive flock on the socket's directory.

    Two supervisors starting at once could otherwise both find the same stale socket, and the
    second would unlink the first one's fresh socket. The lock is held for microseconds and no
    other process is waited on inside it, so taking it blocking is fine in the event loop.
    """
    try:
        fd: int | None = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        fd = None  # e.g. an explicit path in a directory we may only traverse: no lock
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)

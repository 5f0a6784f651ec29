"""Where the control socket lives, so that `procrun status` finds it with no flags.

One directory per user: `$XDG_RUNTIME_DIR/procrun` when XDG_RUNTIME_DIR is a directory we own,
else `/tmp/procrun-<uid>`. The directory is mode 0700 and must stay so: in /tmp another user could
create it first and then read or replace our sockets, so an existing one that is a symlink, is
someone else's, or is open to group/others is refused, never repaired or used.

One socket per project: `<name>-<crc32>.sock`, the checksum taken over the resolved project
directory, so two projects get different sockets and a client started in the project directory
computes the same path as the supervisor. PROCRUN_SOCKET (or --socket) overrides all of this.

Imported by the client path of every command: standard library only, nothing heavy.
"""

from __future__ import annotations

import os
import re
import stat
import zlib
from collections.abc import Mapping
from pathlib import Path

from procrun.errors import ProcrunError

SOCKET_ENV = "PROCRUN_SOCKET"
SOCKET_SUFFIX = ".sock"
# sun_path is 108 bytes on Linux and 104 on macOS, the terminating NUL included.
MAX_SOCKET_PATH_BYTES = 100
_MAX_NAME_CHARS = 40
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_DIRECTORY_MODE = 0o700


def explicit_socket(
    explicit: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The socket named by the caller (a --socket option) or by PROCRUN_SOCKET, if any."""
    if explicit is not None and os.fspath(explicit):
        return Path(explicit)
    value = (os.environ if environ is None else environ).get(SOCKET_ENV, "")
    return Path(value) if value else None


def socket_directory(environ: Mapping[str, str] | None = None) -> Path:
    """This user's socket directory (not created; see `ensure_socket_directory`)."""
    environ = os.environ if environ is None else environ
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    # The XDG spec says to ignore a relative value; one we do not own is not our runtime dir
    # (e.g. a root shell that kept a user's XDG_RUNTIME_DIR after `su`).
    if os.path.isabs(runtime):
        try:
            info = os.stat(runtime)
        except OSError:
            pass
        else:
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
                return Path(runtime) / "procrun"
    return Path(f"/tmp/procrun-{os.geteuid()}")


def socket_file_name(project_dir: Path, *, with_name: bool = True) -> str:
    """`<name>-<hash>.sock` for a project directory, or `<hash>.sock` without the name."""
    resolved = os.fsencode(Path(project_dir).resolve())
    # Only tells one project's socket from another's, in a directory only this user can reach: a
    # CRC is enough, and hashlib would map OpenSSL (~3.6 MiB) into the supervisor for good.
    digest = f"{zlib.crc32(resolved):08x}"
    name = _UNSAFE_NAME_CHARS.sub("_", Path(os.fsdecode(resolved)).name)
    name = name.strip("._")[:_MAX_NAME_CHARS]
    if with_name and name:
        return f"{name}-{digest}{SOCKET_SUFFIX}"
    return f"{digest}{SOCKET_SUFFIX}"


def project_socket_path(directory: Path, project_dir: Path) -> Path:
    """The project's socket in `directory`, dropping the readable name if the path is too long."""
    path = directory / socket_file_name(project_dir)
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        path = directory / socket_file_name(project_dir, with_name=False)
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise ProcrunError(
            f"the control socket path {path} is longer than {MAX_SOCKET_PATH_BYTES} bytes "
            f"(the Unix socket limit): set {SOCKET_ENV} to a shorter path, or XDG_RUNTIME_DIR "
            "to a shorter directory"
        )
    return path


def check_socket_directory(directory: Path) -> None:
    """Refuse a socket directory that is not a real directory, private to this user.

    Raises FileNotFoundError if it does not exist, ProcrunError if it is unsafe.
    """
    info = os.lstat(directory)  # lstat: a symlink planted by someone else must not be followed
    fix = f"remove it (rm -r {directory}) or set {SOCKET_ENV}"
    if stat.S_ISLNK(info.st_mode):
        raise ProcrunError(
            f"socket directory {directory} is a symlink, not a directory; another user may have "
            f"planted it: {fix}"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise ProcrunError(f"socket directory {directory} exists but is not a directory: {fix}")
    if info.st_uid != os.geteuid():
        raise ProcrunError(
            f"socket directory {directory} is owned by uid {info.st_uid}, not by you "
            f"(uid {os.geteuid()}); another user may have created it to reach your control "
            f"socket: {fix}"
        )
    if info.st_mode & 0o077:
        raise ProcrunError(
            f"socket directory {directory} has mode {stat.S_IMODE(info.st_mode):04o}: it must not "
            f"be accessible by group or others; run `chmod 700 {directory}` or set {SOCKET_ENV}"
        )


def ensure_socket_directory(directory: Path) -> Path:
    """Create the socket directory (mode 0700) if missing, then check it is safe to use."""
    try:
        directory.mkdir(mode=_DIRECTORY_MODE)
    except FileExistsError:
        pass  # checked below, exactly like one we just made: it may not be ours
    except FileNotFoundError:
        raise ProcrunError(
            f"cannot create socket directory {directory}: its parent does not exist; "
            f"set {SOCKET_ENV} or XDG_RUNTIME_DIR"
        ) from None
    except OSError as error:
        raise ProcrunError(
            f"cannot create socket directory {directory}: {error.strerror}; set {SOCKET_ENV}"
        ) from None
    check_socket_directory(directory)
    return directory


def server_socket_path(
    project_dir: Path,
    explicit: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Where `procrun start` for `project_dir` listens, creating the socket directory if needed.

    An explicit path (argument or PROCRUN_SOCKET) is used as given: its directory is the user's.
    """
    chosen = explicit_socket(explicit, environ)
    if chosen is not None:
        return chosen
    directory = ensure_socket_directory(socket_directory(environ))
    return project_socket_path(directory, project_dir)

"""A container without Docker: the image's CMD run as PID 1 of a PID namespace, as the image's user,
chrooted into a root put together from the Dockerfile.

The root holds what the Dockerfile puts into the image: the COPY sources (minus .dockerignore) in
WORKDIR, owned by root and readable by all; the user's passwd and group entries and home; an empty
/tmp, so procrun's control socket directory is the container's own. What the base image and the
`pip install` layers would hold comes from this machine, mounted in when the container starts:
/usr, /etc (with the image's passwd and group over the host's), /dev, and this Python and its
venv at their own paths, under parent directories the image's user can enter (a checkout often
lives under a 0700 directory). procrun's package is copied onto PYTHONPATH, as `pip install .`
would have put it into site-packages.

Everything is mounted by the namespace's first process, in the private mount table that `unshare`
gives it: the host never sees those mounts, so removing the root afterwards removes only the
directories made here.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.app.dockerfile import IgnoreRule, Image, context_files
from tests.harness import children_of, wait_for_state

DEADLINE_SECONDS = 30.0
# The base image's PATH (python:*-slim); this venv's bin stands in for /usr/local/bin.
IMAGE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
SITE_PACKAGES = "/.image/site"

# Run by the namespace's first process, as root, before it becomes the image's CMD.
ENTER_IMAGE = r"""
set -eu
root=$1; uid=$2; gid=$3; workdir=$4; shift 4
mount --rbind /dev "$root/dev"
mount --bind /usr "$root/usr"
mount --bind /etc "$root/etc"
mount --bind "$root/.image/passwd" "$root/etc/passwd"
mount --bind "$root/.image/group" "$root/etc/group"
for python in $PYTHON_DIRS; do mount --bind "$python" "$root$python"; done
mount -t proc proc "$root/proc"
exec chroot "$root" setsid setpriv --reuid="$uid" --regid="$gid" --clear-groups \
    env -i -C "$workdir" "$@"
"""


@dataclass(frozen=True)
class ImageRoot:
    """A directory standing in for the image's filesystem, and the container's environment."""

    path: Path
    uid: int
    gid: int
    workdir: str
    env: dict[str, str]  # the image's ENV, then what the platform sets
    python_dirs: tuple[str, ...]  # this interpreter and its venv, mounted at their own paths

    @property
    def workdir_path(self) -> Path:
        """WORKDIR as seen from outside the container."""
        return self.path / self.workdir.lstrip("/")


def build_root(
    image: Image, context: Path, ignore: list[IgnoreRule], platform_env: Mapping[str, str]
) -> ImageRoot:
    root = Path(tempfile.mkdtemp(prefix="procrun-image-"))
    root.chmod(0o755)
    uid, gid = image.user
    workdir = image.workdir
    home = image.env["HOME"]
    for directory in ("dev", "usr", "etc", "proc", ".image", workdir.lstrip("/")):
        (root / directory).mkdir(parents=True, exist_ok=True)
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):  # usrmerge's symlinks
        host = Path("/") / name
        if host.is_symlink():
            (root / name).symlink_to(os.readlink(host))
    tmp = root / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    (root / home.lstrip("/")).mkdir(parents=True)
    os.chown(root / home.lstrip("/"), uid, gid)
    name = image.user_name
    passwd = Path("/etc/passwd").read_text()
    group = Path("/etc/group").read_text()
    (root / ".image/passwd").write_text(f"{passwd}{name}:x:{uid}:{gid}::{home}:/usr/sbin/nologin\n")
    (root / ".image/group").write_text(f"{group}{name}:x:{gid}:\n")
    _copy(image, context, ignore, root / workdir.lstrip("/"))
    shutil.copytree(root / workdir.lstrip("/") / "procrun", root / SITE_PACKAGES[1:] / "procrun")
    for path in root.rglob("*"):  # as COPY leaves them: root's, readable by all
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    python_dirs = tuple(dict.fromkeys((sys.base_prefix, sys.prefix)))
    for python_dir in python_dirs:
        mount_point = root / python_dir.lstrip("/")
        mount_point.mkdir(parents=True, exist_ok=True)
        for parent in [mount_point, *mount_point.parents]:
            if parent == root:
                break
            parent.chmod(parent.stat().st_mode | 0o755)  # enterable; /tmp keeps its 1777
    env = {
        **image.env,
        "PATH": f"{Path(sys.executable).parent}:{IMAGE_PATH}",
        "PYTHONPATH": SITE_PACKAGES,
        **platform_env,
    }
    return ImageRoot(root, uid, gid, workdir, env, python_dirs)


def _copy(image: Image, context: Path, ignore: list[IgnoreRule], workdir: Path) -> None:
    """COPY: a directory's contents, or a file, into the destination directory (one ending in
    "/"), or a single file to the destination path; relative destinations are in WORKDIR."""
    for _, sources, destination in image.copies():
        target = workdir / destination
        for source in sources:
            for file in context_files(context, ignore, source):
                if (context / source).is_dir():
                    copy = target / file.relative_to(context / source)
                elif destination.endswith("/"):
                    copy = target / file.name
                else:
                    copy = target
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(file, copy)


class Container:
    """`unshare` running `cmd` as PID 1 in `root`; its output read line by line."""

    def __init__(self, root: ImageRoot, cmd: Sequence[str]) -> None:
        self.root = root
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [
                *("unshare", "--pid", "--fork", "--mount-proc"),
                *("/bin/sh", "-c", ENTER_IMAGE, "sh"),
                *(str(root.path), str(root.uid), str(root.gid), root.workdir),
                *(f"{k}={v}" for k, v in root.env.items()),
                *cmd,
            ],
            env={
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "PYTHON_DIRS": " ".join(root.python_dirs),
            },
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def pid1(self) -> int:
        """The host pid of the namespace's PID 1: the only child of `unshare`."""
        wait_for_state(lambda: len(children_of(self.proc.pid)) == 1, "the namespace's PID 1")
        (pid,) = children_of(self.proc.pid)
        return pid

    def exec(self, *argv: str, pid_namespace: bool = True) -> list[str]:
        """`docker exec`: the command line running argv as the image's user, in the container's
        root, environment and working directory, and in its PID namespace unless told not to."""
        return [
            *("nsenter", f"--target={self.pid1()}", "--mount", "--root", "--wd"),
            *(["--pid"] if pid_namespace else []),
            *("setpriv", f"--reuid={self.root.uid}", f"--regid={self.root.gid}"),
            "--clear-groups",
            *("env", "-i", *(f"{k}={v}" for k, v in self.root.env.items())),
            *argv,
        ]

    def wait_for_line(self, pattern: str) -> str:
        regex = re.compile(pattern)
        for line in self.lines:
            if regex.search(line):
                return line
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                item = None
            if item is None:
                raise AssertionError(f"no line matching {pattern!r}:\n" + self.transcript())
            self.lines.append(item)
            if regex.search(item):
                return item

    def rest(self) -> str:
        """Everything printed, once the container has exited."""
        while (line := self._queue.get(timeout=DEADLINE_SECONDS)) is not None:
            self.lines.append(line)
        return self.transcript()

    def transcript(self) -> str:
        return "\n".join(self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            for pid in children_of(self.proc.pid):  # PID 1: the kernel kills the rest
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid for {pid}")


def namespace_pids(pid: int) -> list[int]:
    """`pid` as seen from each PID namespace it is in, the host's first."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(n) for n in line.split()[1:]]
    raise AssertionError(f"no NSpid for {pid}")


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for child in children_of(pid):
        found += [child, *descendants(child)]
    return found


def processes_of(uid: int) -> list[int]:
    """Live processes of `uid`, from /proc."""
    found: list[int] = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                status = Path(f"/proc/{name}/status").read_text()
                state = re.search(r"^State:\s+(\S)", status, re.MULTILINE)
                owner = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
                if state and owner and state.group(1) != "Z" and int(owner.group(1)) == uid:
                    found.append(int(name))
    return found

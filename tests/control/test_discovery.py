"""Where the control socket lives and how a command with no flags finds it."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from procrun.control.client import NoSupervisorError, find_socket
from procrun.control.paths import (
    MAX_SOCKET_PATH_BYTES,
    ensure_socket_directory,
    project_socket_path,
    server_socket_path,
    socket_directory,
    socket_file_name,
)
from procrun.control.server import ControlServer
from procrun.errors import ProcrunError
from tests.fakecontrol import FakeTarget, short_temp_dir

NOBODY = 65534
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to give a directory to another uid (os.chown)"
)


@pytest.fixture
def base() -> Iterator[Path]:
    with short_temp_dir() as path:
        yield path


@pytest.fixture
def environ(base: Path) -> dict[str, str]:
    """An environment whose socket directory is `base/procrun` (base is ours and private)."""
    return {"XDG_RUNTIME_DIR": str(base)}


def project(base: Path, name: str) -> Path:
    path = base / "projects" / name
    path.mkdir(parents=True)
    return path


# --- the file name -----------------------------------------------------------------------------


def test_the_name_is_the_project_basename_and_a_hash_of_its_resolved_path(base: Path) -> None:
    app = project(base, "app")
    (base / "link").symlink_to(app)
    name = socket_file_name(app)
    assert re.fullmatch(r"app-[0-9a-f]{8}\.sock", name)
    assert socket_file_name(app / ".") == socket_file_name(base / "link") == name
    assert socket_file_name(project(base, "other")) != name


def test_two_projects_with_the_same_basename_do_not_collide(base: Path) -> None:
    one, two = project(base, "a/app"), project(base, "b/app")
    assert socket_file_name(one) != socket_file_name(two)


def test_the_name_is_sanitised(base: Path) -> None:
    assert re.fullmatch(r"my_app-[0-9a-f]{8}\.sock", socket_file_name(project(base, "my app!")))
    assert re.fullmatch(r"[0-9a-f]{8}\.sock", socket_file_name(Path("/")))


def test_a_long_path_drops_the_name_and_a_hopeless_one_is_an_error(base: Path) -> None:
    app = project(base, "a" * 40)
    deep = base / ("d" * (MAX_SOCKET_PATH_BYTES - len(str(base)) - 30))
    path = project_socket_path(deep, app)
    assert path.name == socket_file_name(app, with_name=False)
    assert len(os.fsencode(path)) <= MAX_SOCKET_PATH_BYTES
    with pytest.raises(ProcrunError, match=r"longer than 100 bytes .* set PROCRUN_SOCKET"):
        project_socket_path(base / ("d" * MAX_SOCKET_PATH_BYTES), app)


# --- the directory -----------------------------------------------------------------------------


def test_xdg_runtime_dir_is_used_when_it_is_ours(base: Path) -> None:
    assert socket_directory({"XDG_RUNTIME_DIR": str(base)}) == base / "procrun"


@pytest.mark.parametrize("value", [None, "", "relative/dir", "/nonexistent/run"])
def test_otherwise_the_directory_is_per_uid_in_tmp(value: str | None) -> None:
    environ = {} if value is None else {"XDG_RUNTIME_DIR": value}
    assert socket_directory(environ) == Path(f"/tmp/procrun-{os.geteuid()}")


@needs_root
def test_an_xdg_runtime_dir_of_another_user_is_not_used(base: Path) -> None:
    os.chown(base, NOBODY, NOBODY)
    assert socket_directory({"XDG_RUNTIME_DIR": str(base)}) == Path(f"/tmp/procrun-{os.geteuid()}")


def test_the_directory_is_created_private(base: Path) -> None:
    previous = os.umask(0)
    try:
        directory = ensure_socket_directory(base / "procrun")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.lstat(directory).st_mode) == 0o700


def test_a_directory_open_to_others_is_refused(base: Path) -> None:
    directory = base / "procrun"
    directory.mkdir()
    directory.chmod(0o755)
    with pytest.raises(ProcrunError) as raised:
        ensure_socket_directory(directory)
    assert str(raised.value) == (
        f"socket directory {directory} has mode 0755: it must not be accessible by group or "
        f"others; run `chmod 700 {directory}` or set PROCRUN_SOCKET"
    )


@needs_root
def test_a_directory_owned_by_another_user_is_refused(base: Path) -> None:
    directory = base / "procrun"
    directory.mkdir(mode=0o700)
    os.chown(directory, NOBODY, NOBODY)
    with pytest.raises(ProcrunError) as raised:
        ensure_socket_directory(directory)
    assert f"is owned by uid {NOBODY}, not by you (uid 0); another user may" in str(raised.value)
    assert f"remove it (rm -r {directory}) or set PROCRUN_SOCKET" in str(raised.value)


def test_a_symlink_or_a_file_in_its_place_is_refused(base: Path) -> None:
    elsewhere = base / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (base / "link").symlink_to(elsewhere)
    with pytest.raises(ProcrunError, match="is a symlink, not a directory; another user may"):
        ensure_socket_directory(base / "link")
    (base / "file").write_text("")
    with pytest.raises(ProcrunError, match="exists but is not a directory"):
        ensure_socket_directory(base / "file")


def test_a_missing_parent_is_a_clear_error(base: Path) -> None:
    with pytest.raises(ProcrunError, match="its parent does not exist"):
        ensure_socket_directory(base / "missing" / "procrun")


def test_the_server_path_is_the_projects_in_a_created_directory(
    base: Path, environ: dict[str, str]
) -> None:
    app = project(base, "app")
    assert server_socket_path(app, environ=environ) == base / "procrun" / socket_file_name(app)
    assert stat.S_IMODE(os.lstat(base / "procrun").st_mode) == 0o700


def test_an_explicit_path_or_procrun_socket_overrides_everything(
    base: Path, environ: dict[str, str]
) -> None:
    app = project(base, "app")
    assert server_socket_path(app, base / "x.sock", environ) == base / "x.sock"
    assert server_socket_path(app, environ={**environ, "PROCRUN_SOCKET": "/s"}) == Path("/s")
    assert not (base / "procrun").exists(), "nothing created for an explicit path"
    explicit = {**environ, "PROCRUN_SOCKET": "/s"}
    assert find_socket(project_dir=app, environ=explicit) == Path("/s")
    assert find_socket("/t", project_dir=app, environ=explicit) == Path("/t")


# --- finding a running supervisor --------------------------------------------------------------


class Supervisors:
    """Control servers for several projects, as `procrun start` would place their sockets."""

    def __init__(self, base: Path, environ: dict[str, str], stack: AsyncExitStack) -> None:
        self.base, self.environ, self._stack = base, environ, stack

    async def start(self, name: str) -> Path:
        directory = project(self.base, name)
        path = server_socket_path(directory, environ=self.environ)
        await self._stack.enter_async_context(
            ControlServer(path, FakeTarget(), project_dir=directory)
        )
        return path

    def stale(self, name: str) -> Path:
        """The socket of a supervisor that was SIGKILLed: the file, and nobody listening."""
        directory = project(self.base, name)
        path = server_socket_path(directory, environ=self.environ)
        with socket.socket(socket.AF_UNIX) as crashed:
            crashed.bind(str(path))
        return path

    async def find(self, project_dir: Path | None) -> Path:
        # In a thread: discovery probes with blocking sockets, and the servers run in this loop.
        return await asyncio.to_thread(find_socket, project_dir=project_dir, environ=self.environ)


@pytest.fixture
async def supervisors(base: Path, environ: dict[str, str]) -> AsyncIterator[Supervisors]:
    async with AsyncExitStack() as stack:
        yield Supervisors(base, environ, stack)


async def test_the_project_directorys_own_socket_is_found(supervisors: Supervisors) -> None:
    app = await supervisors.start("app")
    await supervisors.start("other")
    assert await supervisors.find(supervisors.base / "projects" / "app") == app


async def test_the_only_live_supervisor_is_found_without_a_project(
    supervisors: Supervisors,
) -> None:
    app = await supervisors.start("app")
    supervisors.stale("crashed")
    assert await supervisors.find(None) == app


async def test_another_projects_supervisor_is_never_taken_for_ours(
    supervisors: Supervisors,
) -> None:
    """In project A (its Procfile found), with only B running: no supervisor, not B's."""
    await supervisors.start("b")
    here = project(supervisors.base, "a")
    with pytest.raises(NoSupervisorError, match=f"no procrun supervisor is running for {here}"):
        await supervisors.find(here)


async def test_several_live_supervisors_are_listed_with_their_projects(
    supervisors: Supervisors,
) -> None:
    one, two = await supervisors.start("one"), await supervisors.start("two")
    with pytest.raises(ProcrunError) as raised:
        await supervisors.find(None)
    message = str(raised.value)
    assert not isinstance(raised.value, NoSupervisorError)
    assert message.startswith("several procrun supervisors are running")
    assert "cd into one of their project directories, or use -d DIR or --socket PATH" in message
    projects = supervisors.base / "projects"
    assert raised.value.details == (
        f"{one}  project {projects / 'one'} (pid {os.getpid()})",
        f"{two}  project {projects / 'two'} (pid {os.getpid()})",
    )


async def test_no_live_supervisor_names_the_socket_tried(supervisors: Supervisors) -> None:
    supervisors.stale("crashed")
    here = project(supervisors.base, "here")
    own = project_socket_path(supervisors.base / "procrun", here)
    with pytest.raises(NoSupervisorError) as raised:
        await supervisors.find(here)
    assert str(raised.value).startswith(f"no procrun supervisor is running for {here}: tried {own}")
    assert raised.value.exit_code == 4
    with pytest.raises(NoSupervisorError, match=r"no socket in .* has a live supervisor"):
        await supervisors.find(None)


def test_no_socket_directory_at_all_is_no_supervisor(base: Path, environ: dict[str, str]) -> None:
    app = project(base, "app")
    own = project_socket_path(base / "procrun", app)
    with pytest.raises(NoSupervisorError, match=f"tried {own} \\({base}/procrun does not exist"):
        find_socket(project_dir=app, environ=environ)


def test_an_unsafe_socket_directory_is_refused_by_the_client_too(
    base: Path, environ: dict[str, str]
) -> None:
    (base / "procrun").mkdir(mode=0o777)
    os.chmod(base / "procrun", 0o777)
    with pytest.raises(ProcrunError, match="must not be accessible by group or others"):
        find_socket(project_dir=base, environ=environ)

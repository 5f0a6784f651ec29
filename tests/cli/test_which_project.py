"""A client command acts on its own project's supervisor, never on another one: two real
supervisors, sockets found as users find them (no PROCRUN_SOCKET, a private XDG_RUNTIME_DIR).

- In a project whose supervisor is not running, `status` and `stop` say so; another project's
  supervisor is never taken instead.
- From a subdirectory, the project is found upwards by its Procfile, as git finds .git.
- Only where no Procfile is found (the `docker exec` case) does a command fall back to the only
  supervisor running; with several, it lists their sockets, one a line.
- The status header and every mutating reply name the project directory.
"""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakecontrol import short_temp_dir
from tests.harness import Procrun, child

RECORDER = Path(__file__).parents[1] / "children" / "recorder.py"
ANSWERED = (0, 3)  # healthy, or still STARTING: a supervisor answered either way


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    with short_temp_dir() as path:
        path.chmod(0o700)
        yield path


def client(*args: str, cwd: Path, runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCRUN_")}
    env.update({"XDG_RUNTIME_DIR": str(runtime_dir), "NO_COLOR": "1"})
    return subprocess.run(
        [sys.executable, "-m", "procrun", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def project(base: Path, name: str) -> Path:
    directory = base / name
    directory.mkdir()
    (directory / "Procfile").write_text(f"web: {child(RECORDER)}\n")
    return directory


def supervisor(directory: Path, runtime_dir: Path) -> Procrun:
    running = Procrun(
        directory, f"web: {child(RECORDER)}\n", env={"XDG_RUNTIME_DIR": str(runtime_dir)}
    )
    running.wait_for_line(r"web\.1 +\| leader \d+ ready")
    return running


def test_a_project_without_a_supervisor_never_reaches_another(
    tmp_path: Path, runtime_dir: Path
) -> None:
    a, b = project(tmp_path, "a"), project(tmp_path, "b")
    with supervisor(b, runtime_dir) as running_b:
        status = client("status", cwd=a, runtime_dir=runtime_dir)
        assert status.returncode == 4, status.stdout
        assert f"no procrun supervisor is running for {a.resolve()}" in status.stderr
        stop = client("stop", "web", cwd=a, runtime_dir=runtime_dir)
        assert stop.returncode == 4, stop.stdout
        assert stop.stdout == ""
        in_b = client("status", cwd=b, runtime_dir=runtime_dir)
        assert in_b.returncode in ANSWERED, in_b.stderr
        assert in_b.stdout.splitlines()[0].startswith(f"procrun 0.1.0 for {b.resolve()}: ")
        assert "got SIGTERM" not in running_b.transcript(), "B's web was not touched"


def test_a_subdirectory_finds_its_project_upwards(tmp_path: Path, runtime_dir: Path) -> None:
    b = project(tmp_path, "b")
    (b / "jobs" / "deep").mkdir(parents=True)
    with supervisor(b, runtime_dir):
        status = client("status", cwd=b / "jobs" / "deep", runtime_dir=runtime_dir)
        assert status.returncode in ANSWERED, status.stderr
        assert f"for {b.resolve()}:" in status.stdout.splitlines()[0]
        restart = client("restart", "web", cwd=b / "jobs", runtime_dir=runtime_dir)
        assert restart.returncode == 0, restart.stderr
        assert restart.stdout == f"web.1: restarted ({b.resolve()})\n"


def test_without_a_procfile_the_only_supervisor_is_used_and_several_are_listed(
    tmp_path: Path, runtime_dir: Path
) -> None:
    b, c = project(tmp_path, "b"), project(tmp_path, "c")
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    with supervisor(b, runtime_dir):
        status = client("status", cwd=nowhere, runtime_dir=runtime_dir)
        assert status.returncode in ANSWERED, status.stderr
        assert f"for {b.resolve()}:" in status.stdout.splitlines()[0]
        with supervisor(c, runtime_dir):
            several = client("status", cwd=nowhere, runtime_dir=runtime_dir)
    assert several.returncode == 1
    first, *listed = several.stderr.splitlines()
    assert first.startswith("procrun: several procrun supervisors are running")
    assert "\\n" not in several.stderr, "each socket on a line of its own, not a literal \\n"
    assert len(listed) == 2
    assert any(f"project {b.resolve()} " in line for line in listed)
    assert any(f"project {c.resolve()} " in line for line in listed)


def test_start_clears_sockets_of_supervisors_that_were_killed(
    tmp_path: Path, runtime_dir: Path
) -> None:
    """A SIGKILLed supervisor leaves its socket file; the next start removes it (nobody listens
    there), and leaves the live ones and anything that is not a socket alone."""
    b, c = project(tmp_path, "b"), project(tmp_path, "c")
    directory = runtime_dir / "procrun"
    with supervisor(b, runtime_dir):
        live = next(directory.glob("b-*.sock"))
        stale = directory / "crashed-0000abcd.sock"
        with socket.socket(socket.AF_UNIX) as crashed:
            crashed.bind(str(stale))
        not_a_socket = directory / "notes-0000abcd.sock"
        not_a_socket.write_text("mine")
        with supervisor(c, runtime_dir):
            assert not stale.exists()
            assert live.exists()
            assert not_a_socket.read_text() == "mine"

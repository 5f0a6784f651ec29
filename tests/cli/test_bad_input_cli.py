"""Bad input: one line on stderr naming the file, line and fix; exit code 2; never a traceback."""

import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.harness import Procrun


@pytest.mark.parametrize(
    ("procfile", "args", "toml", "message"),
    [
        (
            "web gunicorn app\n",
            (),
            None,
            'Procfile:1: expected "<name>: <command>", got "web gunicorn app"',
        ),
        (
            "web: a\nweb: b\n",
            (),
            None,
            'Procfile:2: duplicate process "web" (first defined on line 1)',
        ),
        (
            "web: a\n",
            ("wbe",),
            None,
            'unknown process "wbe"; did you mean "web"?; the Procfile defines: web',
        ),
        ("web: a\n", ("-c", "web"), None, '-c/--concurrency: expected "<name>=<count>", got "web"'),
        ("web: a\n", (), '[processes.web]\ngrace = "soon"\n', "procrun.toml:2: "),
        ("web: a\n", ("--shutdown-timeout", "abc"), None, "--shutdown-timeout"),
        ("web: a\n", ("-f", "Nope"), None, "Procfile not found: "),
    ],
)
@pytest.mark.parametrize("command", ["start", "check"])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    command: str,
    procfile: str,
    args: tuple[str, ...],
    toml: str | None,
    message: str,
) -> None:
    with Procrun(tmp_path, procfile, *args, command=(command,), toml=toml) as procrun:
        code = procrun.wait()
        out = procrun.rest()
    assert code == 2
    assert procrun.stderr.count("\n") == 1, procrun.stderr
    assert procrun.stderr.startswith("procrun: ")
    assert message in procrun.stderr
    assert "Traceback" not in procrun.stderr
    assert out == []


def test_click_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    with Procrun(tmp_path, "web: a\n", "--no-such-flag") as procrun:
        assert procrun.wait() == 2
    assert "No such option" in procrun.stderr
    assert "Traceback" not in procrun.stderr


def test_check_suggests_the_process_a_settings_table_meant(tmp_path: Path) -> None:
    toml = '[processes.wbe]\ngrace = "5s"\n'
    with Procrun(
        tmp_path, "web: sleep 1\nworker: sleep 2\n", command=("check",), toml=toml
    ) as check:
        assert check.wait() == 0
        out = "\n".join(check.rest())
    assert 'settings for "wbe", which the Procfile does not define; did you mean "web"?' in out


def test_check_prints_the_resolved_formation_and_deadline_warnings(tmp_path: Path) -> None:
    procfile = "web: gunicorn app\nworker: celery -A app worker\n"
    toml = 'shutdown_timeout = "25s"\n'
    with Procrun(tmp_path, procfile, "-c", "worker=2", command=("check",), toml=toml) as check:
        assert check.wait() == 0
        out = "\n".join(check.rest())
    assert "shutdown deadline: 25 s" in out
    assert "worker.2: celery -A app worker" in out
    assert (
        "grace 600 s (SIGTERM, SIGQUIT 10 s before the end, then SIGKILL to the group), "
        "cut to 25 s in a shutdown (SIGQUIT 10 s before)"
    ) in out, "the full grace applies to stop and restart; the cut one to a shutdown"
    assert "warning: worker: grace 600 s exceeds the shutdown deadline 25 s" in out
    assert "PORT=5101" in out
    # pytest runs from the virtualenv without activating it: its bin (gunicorn, celery) goes first.
    assert f"PATH: {Path(sys.prefix) / 'bin'} first (procrun runs from that virtualenv)" in out


def test_start_is_quiet_about_an_intended_deadline_cut(tmp_path: Path) -> None:
    # Named `worker`, so the Celery rule gives it 600 s, cut to the 25 s deadline on purpose.
    toml = (
        'shutdown_timeout = "25s"\nplatform_deadline = "30s"\n[processes.worker]\noneshot = true\n'
    )
    procfile = f"worker: {sys.executable} -c pass\n"
    with Procrun(tmp_path, procfile, toml=toml) as procrun:
        assert procrun.wait() == 0
        output = "\n".join(procrun.rest())
    assert "process.exited" in output
    assert "config.warning" not in output


@pytest.mark.parametrize("command", ["check", "start"])
def test_a_program_missing_from_path_is_named_with_its_line(tmp_path: Path, command: str) -> None:
    """Found before anything starts, on the process's own PATH, with the likely spelling."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uvicorn").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "uvicorn").chmod(0o755)
    procfile = "# the app\nrelease: true\nweb: uvicron app:app\n"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    with Procrun(tmp_path, procfile, command=(command,), env=env) as procrun:
        assert procrun.wait() == 2
        assert procrun.rest() == []
    first = procrun.stderr.splitlines()[0]
    assert first.startswith(
        'procrun: Procfile:3: "uvicron" not found on PATH; did you mean "uvicorn"? (PATH='
    ), procrun.stderr
    assert "Traceback" not in procrun.stderr


@pytest.mark.parametrize("command", ["check", "start"])
def test_a_web_port_already_in_use_is_said_at_once(tmp_path: Path, command: str) -> None:
    """It used to take a minute of failed binds and restarts to find out."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {"PORT": str(port)}
        with Procrun(tmp_path, "web: sleep 60\n", command=(command,), env=env) as procrun:
            line = procrun.wait_for_line(rf"PORT {port} is not free")
            if command == "start":
                procrun.signal(signal.SIGTERM)
            assert procrun.wait() == 0
    assert "web.1's PORT" in line.string
    assert "stop what holds it, or set PORT or -p" in line.string

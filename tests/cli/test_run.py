"""`procrun run`: one command with the formation's environment, procrun replaced by it (the same
pid; the terminal, Ctrl-C and the exit status the command's own). Real processes, and a real
pseudo-terminal where the terminal matters."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.harness import DEADLINE_SECONDS, write_script
from tests.terminal import CTRL_C, Terminal

PYTHON = sys.executable
SHOW_ENV = (
    "import json, os, sys; "
    "print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd(), 'argv': sys.argv[1:], "
    "'pid': os.getpid(), 'ppid': os.getppid()}))"
)
WAIT_FOR_CTRL_C = """
import signal, sys
try:
    print("ready", flush=True)
    while True:
        signal.pause()
except KeyboardInterrupt:
    print("got SIGINT", flush=True)
    sys.exit(3)
"""


def _environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCRUN_")}
    for key in ("PORT", "PS", "FROM_REAL"):
        env.pop(key, None)
    env.update(extra or {})
    return env


def _project(
    directory: Path,
    procfile: str = f"web: {PYTHON} -c pass\n",
    *,
    toml: str | None = None,
    dotenv: str | None = None,
) -> Path:
    (directory / "Procfile").write_text(procfile)
    if toml is not None:
        (directory / "procrun.toml").write_text(toml)
    if dotenv is not None:
        (directory / ".env").write_text(dotenv)
    return directory


def _run(
    directory: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "procrun", "run", *args],
        cwd=directory,
        env=_environment(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )


def _shown(completed: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert completed.returncode == 0, completed.stderr
    shown: dict[str, object] = json.loads(completed.stdout)
    return shown


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    """`procrun run ARGS` on a real pseudo-terminal."""
    opened: list[Terminal] = []

    def open_terminal(directory: Path, *args: str) -> Terminal:
        opened.append(Terminal([PYTHON, "-m", "procrun", "run", *args], directory, _environment()))
        return opened[-1]

    yield open_terminal
    for each in opened:
        each.close()


def test_a_command_gets_the_terminal_and_the_dotenv(
    tmp_path: Path, terminal: Callable[..., Terminal]
) -> None:
    _project(tmp_path, dotenv="FROM_DOTENV=from the .env\n")
    script = 'import os,sys; print(os.isatty(0), os.environ["FROM_DOTENV"])'
    shell = terminal(tmp_path, "python", "-c", script)
    shell.wait_for(r"True from the \.env\r?\n")
    assert shell.wait() == 0


def test_the_exit_status_is_the_commands(tmp_path: Path) -> None:
    assert _run(_project(tmp_path), "sh", "-c", "exit 7").returncode == 7


def test_ctrl_c_reaches_the_command(tmp_path: Path, terminal: Callable[..., Terminal]) -> None:
    shell = terminal(_project(tmp_path), PYTHON, "-c", WAIT_FOR_CTRL_C)
    shell.wait_for(r"ready")
    shell.type(CTRL_C)
    shell.wait_for(r"got SIGINT")
    assert shell.wait() == 3


def test_signals_are_passed_on_as_a_shell_passes_them(tmp_path: Path) -> None:
    """`nohup procrun run job` still ignores SIGHUP, as `nohup job` would; but SIGPIPE, which
    Python itself ignores, is back to its default, so `procrun run sh -c 'yes | head'` ends."""
    show = "grep -E '^SigIgn' /proc/self/status"
    shown = subprocess.run(
        [PYTHON, "-m", "procrun", "run", "sh", "-c", show],
        cwd=_project(tmp_path),
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),  # as nohup does
        check=True,
    ).stdout
    ignored = int(shown.split()[1], 16)
    assert ignored & (1 << (signal.SIGHUP - 1)), "nohup's SIGHUP must stay ignored"
    assert not ignored & (1 << (signal.SIGPIPE - 1)), "Python's own SIGPIPE must not leak"


def test_procrun_replaces_itself_with_the_command(tmp_path: Path) -> None:
    with subprocess.Popen(
        [PYTHON, "-m", "procrun", "run", PYTHON, "-c", SHOW_ENV],
        cwd=_project(tmp_path),
        env=_environment(),
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        out, _ = proc.communicate(timeout=DEADLINE_SECONDS)
    shown = json.loads(out)
    assert (shown["pid"], shown["ppid"]) == (proc.pid, os.getpid())


def test_a_procfile_name_runs_that_entry_as_start_would(tmp_path: Path) -> None:
    script = write_script(tmp_path, "show.py", SHOW_ENV)
    (tmp_path / "app").mkdir()
    toml = '[processes.web]\nenv = { FROM_TOML = "web\'s" }\ncwd = "app"\n'
    _project(tmp_path, f"web: {PYTHON} {script} from-procfile\n", toml=toml)
    with subprocess.Popen(
        [PYTHON, "-m", "procrun", "run", "web", "extra", "two words", "$HOME"],
        cwd=tmp_path,
        env=_environment(),
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        out, _ = proc.communicate(timeout=DEADLINE_SECONDS)
    assert proc.returncode == 0
    shown = json.loads(out)
    env = shown["env"]
    assert (env["PORT"], env["PS"], env["FROM_TOML"]) == ("5000", "web.1", "web's")
    assert shown["cwd"] == str(tmp_path / "app")
    assert shown["argv"] == ["from-procfile", "extra", "two words", "$HOME"]
    assert shown["pid"] == proc.pid  # /bin/sh exec'd the program, as under start


def test_a_procfile_name_wins_and_dash_dash_forces_the_program(tmp_path: Path) -> None:
    _project(tmp_path, f"""echo: {PYTHON} -c "print('the entry')"\n""")
    assert _run(tmp_path, "echo", "hello").stdout == "the entry\n"
    assert _run(tmp_path, "--", "echo", "hello").stdout == "hello\n"


def test_real_environment_beats_toml_defaults_which_beat_dotenv(tmp_path: Path) -> None:
    toml = (
        '[defaults]\nenv = { A = "from toml", B = "from toml" }\n'
        '[processes.web]\nenv = { C = "web only" }\n'
    )
    dotenv = "A=from dotenv\nB=from dotenv\nC=from dotenv\nD=from dotenv\n"
    _project(tmp_path, toml=toml, dotenv=dotenv)
    environment = {"A": "from real"}
    shown = _shown(_run(tmp_path, PYTHON, "-c", SHOW_ENV, env=environment))
    env = shown["env"]
    assert isinstance(env, dict)
    assert [env["A"], env["B"], env["C"], env["D"]] == [
        "from real",
        "from toml",
        "from dotenv",  # a process's own env is not a plain command's
        "from dotenv",
    ]
    assert "PS" not in env
    assert "PORT" not in env
    assert shown["cwd"] == str(tmp_path)


def test_an_env_file_replaces_the_dotenv_and_pythonunbuffered_is_set(tmp_path: Path) -> None:
    _project(tmp_path, dotenv="D=from .env\n")
    (tmp_path / "other.env").write_text("D=from other.env\n")
    script = "import os; print(os.environ['D'], os.environ['PYTHONUNBUFFERED'])"
    completed = subprocess.run(
        [PYTHON, "-m", "procrun", "run", "-e", "other.env", PYTHON, "-c", script],
        cwd=tmp_path,
        env={k: v for k, v in _environment().items() if k != "PYTHONUNBUFFERED"},
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
    )
    assert completed.stdout == "from other.env 1\n", completed.stderr


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="needs procrun in a virtualenv")
def test_the_virtualenvs_python_comes_first(tmp_path: Path) -> None:
    venv_bin = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if d != venv_bin)
    script = "import sys; print(sys.prefix)"
    completed = _run(_project(tmp_path), "python", "-c", script, env={"PATH": path})
    assert completed.stdout == f"{sys.prefix}\n", completed.stderr


def test_the_commands_own_options_are_not_procruns(tmp_path: Path) -> None:
    completed = _run(_project(tmp_path), "ls", "-la")
    assert completed.returncode == 0, completed.stderr
    assert "Procfile" in completed.stdout
    assert _run(tmp_path, PYTHON, "-c", "print(1)", "-e", "x").stdout == "1\n"


def test_a_missing_command_is_one_line_and_127(tmp_path: Path) -> None:
    completed = _run(_project(tmp_path), "no-such-program", "--flag")
    assert completed.returncode == 127
    assert completed.stderr.splitlines() == ["procrun run: no-such-program: command not found"]


def test_a_file_that_is_not_executable_is_126(tmp_path: Path) -> None:
    (_project(tmp_path) / "tool").write_text("echo hi\n")
    completed = _run(tmp_path, "./tool")
    assert completed.returncode == 126
    assert completed.stderr.splitlines() == ["procrun run: ./tool: Permission denied"]


@pytest.mark.parametrize(
    ("procfile", "toml", "expected"),
    [
        ("web gunicorn app\n", None, r'procrun: Procfile:1: expected "<name>: <command>"'),
        (f"web: {PYTHON} -c pass\n", "[defaults]\ngrace = \n", r"procrun: \S*procrun\.toml:2: "),
    ],
    ids=["bad-procfile", "bad-toml"],
)
def test_bad_project_input_is_one_line_and_2(
    tmp_path: Path, procfile: str, toml: str | None, expected: str
) -> None:
    completed = _run(_project(tmp_path, procfile, toml=toml), "true")
    assert completed.returncode == 2
    assert len(completed.stderr.splitlines()) == 1, completed.stderr
    assert re.match(expected, completed.stderr), completed.stderr
    assert "Traceback" not in completed.stderr


def test_a_missing_program_elsewhere_in_the_procfile_does_not_stop_a_one_off(
    tmp_path: Path,
) -> None:
    """`procrun run pip install gunicorn` must work while gunicorn is still missing."""
    _project(tmp_path, "web: no-such-server-yet --bind :$PORT\n")
    done = _run(tmp_path, "sh", "-c", "echo installing")
    assert (done.returncode, done.stdout) == (0, "installing\n")
    missing = _run(tmp_path, "web")  # the entry itself: the shell says so, as a shell does
    assert missing.returncode == 127
    assert "no-such-server-yet" in missing.stderr

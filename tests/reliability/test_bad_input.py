"""Bad input through the command line: never a traceback, one clear line, a documented exit code
(issue 6). The parsers' own property tests live beside them (test_procfile.py, test_config.py,
test_environ.py); this drives `procrun.entry.main` as a user does, with generated argv and files."""

import contextlib
import io
import os
import re
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from procrun.cli.entry import main
from tests.fakecontrol import short_temp_dir
from tests.harness import Procrun, child

RECORDER = Path(__file__).parent.parent / "children" / "recorder.py"
CHECK_EXIT_CODES = (0, 1, 2)  # README, Exit codes: 2 is bad input

# --- in process: procrun.entry.main --------------------------------------------------------------


def run_main(argv: Sequence[str]) -> tuple[int, str, str]:
    """procrun's exit code, stdout and stderr; any exception but SystemExit propagates (that
    would be the traceback a user sees)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exit_:
            code = exit_.code
        else:
            raise AssertionError("main() returned instead of exiting")
    assert isinstance(code, int), f"exit code {code!r}"
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def project_environment(directory: Path) -> Iterator[None]:
    """Run in `directory` with no PROCRUN_* or PORT from the machine running the tests."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PROCRUN_") and k != "PORT"}
    with mock.patch.dict(os.environ, clean, clear=True), contextlib.chdir(directory):
        yield


def assert_one_clear_line(code: int, out: str, err: str) -> None:
    """The README's promise for bad input: one line on stderr, nothing on stdout."""
    assert "Traceback" not in out + err
    assert out == "", out
    if err.startswith(("Usage: ", "Error: ")):  # click's own: [usage, hint, blank,] Error: ...
        assert code == 2
        assert err.splitlines()[-1].startswith("Error: "), err
        assert err.startswith("Usage: ") or err.count("\n") == 1, err
        return
    assert err.startswith("procrun: "), err
    assert err.endswith("\n"), f"not one line: {err!r}"
    assert err.count("\n") == 1, f"not one line: {err!r}"


# Generated values: mostly plausible ones and near misses, sometimes junk. No NUL (argv cannot
# carry one); the only lone surrogates are those Python makes of bytes that are not UTF-8.
UNDECODABLE = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)
JUNK = st.text(
    st.one_of(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), UNDECODABLE),
    max_size=12,
)


def mostly(values: Sequence[str]) -> st.SearchStrategy[str]:
    """One of `values` three times in four, junk otherwise."""
    choice = st.sampled_from(values)
    return st.one_of(choice, choice, choice, JUNK)


PATHS = mostly(
    ["Procfile", "procrun.toml", ".env", "other.env", "sub", "sub/Procfile", "missing", "", ".",
     "/", "/dev/null", "Procfile/inside", "pyproject.toml"]
)  # fmt: skip
DURATIONS = mostly(
    ["30", "25s", "500ms", "1h30m", "0", "-1", "abc", "nan", "inf", "1e400", "", "10 m", "1.5.2s",
     "9" * 400, "1d", "5 s"]
)  # fmt: skip
TYPES = st.sampled_from(["web", "worker", "release", "beat", "nope", "web.1", ""])
CONCURRENCY = st.one_of(
    st.builds(lambda name, n: f"{name}={n}", TYPES, st.integers(-2, 300)),
    mostly(["web", "=1", "web=x", "web=1,,worker=2", ",", "web==2", "web=1.5", "web= 2"]),
)
PORTS = mostly(["5000", "1", "65535", "65000", "8080", "0", "65536"])
OPTIONS = st.one_of(
    st.tuples(st.sampled_from(["-f", "--procfile"]), PATHS),
    st.tuples(st.sampled_from(["-e", "--env"]), PATHS),
    st.tuples(st.just("--config"), PATHS),
    st.tuples(st.sampled_from(["-d", "--root"]), PATHS),
    st.tuples(st.sampled_from(["--shutdown-timeout", "--platform-deadline"]), DURATIONS),
    st.tuples(st.sampled_from(["-c", "--concurrency"]), CONCURRENCY),
    st.tuples(st.sampled_from(["-p", "--port"]), PORTS),
    st.tuples(TYPES),
    st.tuples(mostly(["--", "-x", "--no-such", "-c", "-p"])),
)
ARGV = st.lists(OPTIONS, max_size=5).map(lambda groups: [arg for group in groups for arg in group])


def _file(valid: str, lines: Sequence[str], absent: bool = True) -> st.SearchStrategy[bytes | None]:
    """A file: absent, a valid one, lines mixing good, bad and junk, or arbitrary bytes."""
    mixed = st.lists(st.one_of(st.sampled_from(lines), JUNK), max_size=6).map(
        lambda chosen: "\n".join(chosen).encode()
    )
    good = st.lists(st.sampled_from(lines), max_size=6).map(lambda ls: "\n".join(ls).encode())
    present = st.one_of(st.just(valid.encode()), good, mixed, st.binary(max_size=20))
    return st.one_of(st.none(), present) if absent else present


VALID_PROCFILE = "web: sleep 1\nworker: celery -A app worker\nrelease: true\n"
PROCFILE_LINES = [
    "web: sleep 1", "worker: celery -A app worker", "release: true", "beat: x", "web gunicorn",
    "bad name: x", "web.app: x", "empty:", "# comment", "", "\ufeffweb: a", "web: a\tb",
]  # fmt: skip
PROCFILES = _file(VALID_PROCFILE, PROCFILE_LINES)
PRESENT_PROCFILES = _file(VALID_PROCFILE, PROCFILE_LINES, absent=False)
TOMLS = _file(
    'shutdown_timeout = "25s"\n[processes.web]\ngrace = "10s"\nmax_memory = "400MB"\n',
    ['shutdown_timeout = "25s"', 'shutdown_timeout = "soon"', "platform_deadline = -1",
     'platform_deadline = "30s"', 'on_give_up = "sometimes"', "[defaults]", "[processes.web]",
     "[processes.nope]", 'grace = "1h"', 'grace = "forever"', 'max_memory = "lots"',
     'max_memory = "400MB"', "max_memory = -1", 'max_memory = "1e9GB"', "count = 2",
     "count = -1", 'count = "x"', 'cwd = "sub"', 'cwd = "missing"', 'env = { A = "1" }',
     'stop_signal = "NOPE"', "second_signal = false", "[tool.procrun]", "x = [", "unknown = 1"],
)  # fmt: skip
DOTENVS = _file(
    "A=1\nexport B=2\n",
    ["A=1", "export B=2", "bad line", "C=${A}", 'D="unterminated', "PORT=7000", "=1", "E"],
)  # fmt: skip


VALID_FILES = {
    "Procfile": VALID_PROCFILE.encode(),
    "procrun.toml": b'shutdown_timeout = "25s"\n[processes.web]\ngrace = "10s"\n',
    ".env": b"A=1\nexport B=2\n",
    "other.env": b"C=${A}\n",
    "sub/Procfile": b"web: sleep 2\n",
}
PLAIN_ARGV = st.sampled_from(
    [[], ["web"], ["-e", "other.env"], ["-e", ".env", "-e", "other.env"], ["-c", "web=2"],
     ["--config", "procrun.toml", "worker"], ["-f", "sub/Procfile"], ["-d", "sub"],
     ["--shutdown-timeout", "25s", "--platform-deadline", "30s"]]
)  # fmt: skip


def check_project(directory: Path, files: dict[str, bytes | None], argv: list[str]) -> None:
    """`procrun check ARGV` in `directory` holding `files`: a documented exit code, never a
    traceback; the resolved formation, or one line on stderr."""
    (directory / "sub").mkdir()
    for name, content in files.items():
        if content is not None:
            (directory / name).write_bytes(content)
    with project_environment(directory):
        code, out, err = run_main(["check", *argv])
    assert code in CHECK_EXIT_CODES, (code, out, err)
    if code == 0:
        assert err == "", err
        assert out.startswith("Procfile: "), out
    else:
        assert_one_clear_line(code, out, err)


@settings(max_examples=200, deadline=None)
@given(argv=ARGV)
# Control characters a user can put in an argument (a pasted line break, a mistyped path): each
# must reach the one-line message escaped.
@example(argv=["web\n"])
@example(argv=["-c", "web\n=2"])
@example(argv=["-f", "Proc\nfile"])
@example(argv=["-e", "other\n.env"])
@example(argv=["--config", "procrun\n.toml"])
@example(argv=["--shutdown-timeout", "2\n5s"])
@example(argv=["-f", "Procfile\udcff"])  # `-f $'Procfile\xff'`: bytes that are not UTF-8
def test_check_with_any_arguments_never_prints_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, argv: list[str]
) -> None:
    check_project(tmp_path_factory.mktemp("cli"), dict(VALID_FILES), argv)


@settings(max_examples=200, deadline=None)
@given(
    argv=PLAIN_ARGV,
    procfile=PRESENT_PROCFILES,
    toml=TOMLS,
    dotenv=DOTENVS,
    other_env=DOTENVS,
    sub_procfile=PROCFILES,
)
def test_check_with_any_files_never_prints_a_traceback(
    tmp_path_factory: pytest.TempPathFactory,
    argv: list[str],
    procfile: bytes | None,
    toml: bytes | None,
    dotenv: bytes | None,
    other_env: bytes | None,
    sub_procfile: bytes | None,
) -> None:
    files = {
        "Procfile": procfile,
        "procrun.toml": toml,
        ".env": dotenv,
        "other.env": other_env,
        "sub/Procfile": sub_procfile,
    }
    check_project(tmp_path_factory.mktemp("cli"), files, argv)


@pytest.mark.parametrize(
    ("args", "toml", "message"),
    [
        (
            ("--platform-deadline", "soon"),
            None,
            "procrun: --platform-deadline / PROCRUN_PLATFORM_DEADLINE: invalid duration 'soon'",
        ),
        (("--shutdown-timeout", "-5s"), None, "invalid duration '-5s'"),
        (("--shutdown-timeout", "1e400"), None, "invalid duration '1e400'"),
        (("--shutdown-timeout", "nan"), None, "invalid duration 'nan'"),
        ((), '[processes.web]\nmax_memory = "lots"\n', "procrun.toml:2: "),
        ((), "[processes.web]\nmax_memory = -1\n", "invalid size -1"),
        ((), '[processes.web]\nmax_memory = "1e9GB"\n', "invalid size '1e9GB'"),
        ((), '[processes.web]\nmax_memory_for = "1y"\n', "invalid duration '1y'"),
        ((), '[processes.web]\nstop_signal = "NOPE"\n', "procrun.toml:2: "),
        ((), 'platform_deadline = "-1s"\n', "procrun.toml:1: "),
    ],
)
def test_bad_durations_sizes_and_signals_are_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], toml: str | None, message: str
) -> None:
    (tmp_path / "Procfile").write_text("web: sleep 1\n")
    if toml is not None:
        (tmp_path / "procrun.toml").write_text(toml)
    with project_environment(tmp_path):
        code, out, err = run_main(["check", *args])
    assert code == 2
    assert_one_clear_line(code, out, err)
    assert message in err


def test_a_bad_duration_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: sleep 1\n")
    with project_environment(tmp_path):
        os.environ["PROCRUN_SHUTDOWN_TIMEOUT"] = "soon"
        code, out, err = run_main(["check"])
    assert code == 2
    assert_one_clear_line(code, out, err)
    assert "PROCRUN_SHUTDOWN_TIMEOUT: invalid duration 'soon'" in err


def test_a_project_directory_that_does_not_exist_is_bad_input(tmp_path: Path) -> None:
    """As a procrun.toml `cwd` that does not exist is (exit 2): every process would fail to
    spawn in it."""
    (tmp_path / "Procfile").write_text("web: sleep 1\n")
    with project_environment(tmp_path):
        code, out, err = run_main(["check", "-d", "missing"])
    assert code == 2, (code, out, err)
    assert_one_clear_line(code, out, err)
    assert "missing" in err


def test_an_absurd_count_is_refused_quickly_even_when_port_is_set(tmp_path: Path) -> None:
    """With PORT set (Render sets it) no port runs out to bound `-c`: a billion instances must be
    refused as bad input, not built in memory. Run apart, under a memory limit and a deadline."""
    (tmp_path / "Procfile").write_text("web: sleep 1\n")

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))

    try:
        result = subprocess.run(
            [sys.executable, "-m", "procrun", "check", "-c", "web=1000000000"],
            cwd=tmp_path,
            env={**os.environ, "PORT": "8000", "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=30,
            preexec_fn=limit_memory,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("procrun check -c web=1000000000 ran for 30 s") from None
    assert result.returncode == 2, result.stderr[-2000:]
    assert_one_clear_line(result.returncode, result.stdout, result.stderr)


# --- against a real supervisor: client commands --------------------------------------------------


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Procrun, Path, Path]]:
    directory = tmp_path_factory.mktemp("supervised")
    with short_temp_dir() as sockets:
        socket = sockets / "control.sock"
        env = {"PROCRUN_SOCKET": str(socket)}
        toml = '[defaults]\nmin_uptime = "100ms"\n'
        with Procrun(directory, f"web: {child(RECORDER)}\n", env=env, toml=toml) as procrun:
            procrun.wait_for_line(r"process.running .*process=web.1")
            yield procrun, socket, directory
            procrun.signal(signal.SIGTERM)
            assert procrun.wait() == 0
            procrun.rest()
    signals_received = re.findall(r"leader \d+ got (SIG\w+)", procrun.transcript())
    assert signals_received == ["SIGTERM"], "no bad request may reach the process"
    assert "Traceback" not in procrun.transcript() + procrun.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("signal", "web", "NOPE"), 1, "unknown signal 'NOPE': use a name like TERM"),
        (("signal", "web", "SIGNOPE"), 1, "unknown signal 'SIGNOPE'"),
        (("signal", "web", "99"), 1, "unknown signal '99'"),
        (("signal", "web", "0"), 1, "unknown signal '0'"),
        (("signal", "web", ""), 1, "unknown signal ''"),
        (("signal", "nope", "USR1"), 1, 'unknown process "nope"; known: web, web.1'),
        (("signal", "web.2", "USR1"), 1, 'unknown process "web.2"'),
        (("status", "nope"), 1, 'unknown process "nope"'),
        (("stop", "nope"), 1, 'unknown process "nope"'),
        (("restart", "web", "nope"), 1, 'unknown process "nope"'),
        (("start", "nope"), 1, 'unknown process "nope"'),
        (("logs", "nope"), 1, 'unknown process "nope"'),
        (("status", "a b"), 1, '"names" must be a list of process names'),
        (("logs", "-n", "-1"), 2, "Invalid value for '-n'"),
        (("logs", "-n", "lots"), 2, "Invalid value for '-n'"),
        (("signal", "web"), 2, "Missing argument 'SIGNAL'"),
        (("stop",), 2, "Missing argument 'NAMES...'"),
    ],
)
def test_client_commands_with_bad_names_and_signals_against_a_real_supervisor(
    supervisor: tuple[Procrun, Path, Path], args: tuple[str, ...], code: int, message: str
) -> None:
    _, socket, directory = supervisor
    with project_environment(directory):
        os.environ["PROCRUN_SOCKET"] = str(socket)
        result = run_main(args)
    assert result[0] == code, result
    assert_one_clear_line(*result)
    assert message in result[2]
    assert re.search(r"\bweb\.1\b", client_status(socket, directory)), "still serving"


def client_status(socket: Path, directory: Path) -> str:
    with project_environment(directory):
        os.environ["PROCRUN_SOCKET"] = str(socket)
        code, out, err = run_main(["status"])
    assert code == 0, out + err
    return out

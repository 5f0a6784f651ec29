import re
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procrun.errors import ConfigError
from procrun.project.config import Config, load_config, settings_for, unknown_process_names
from procrun.project.procfile import parse_procfile
from procrun.settings import (
    CELERY_WORKER_GRACE_SECONDS,
    GiveUpPolicy,
    ProcessSettings,
    RestartPolicy,
)

FULL = """\
shutdown_timeout = "25s"
on_give_up = "continue"

[defaults]
grace = "20s"
env = { SHARED = "yes", LEVEL = "info" }

[processes.worker]
grace = "10m"
stop_signal = "INT"
second_signal = "QUIT"
second_signal_margin = "15s"
restart = "on-failure"
min_uptime = "2s"
max_restarts = 3
restart_window = "1m"
backoff = "250ms"
backoff_max = "1m"
cwd = "app"
env = { LEVEL = "debug", QUEUE = "default" }
oneshot = false
count = 2
max_memory = "400MB"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(directory: Path, *explicit: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(directory, *explicit)
    return str(info.value)


def toml_error(tmp_path: Path, text: str) -> str:
    write(tmp_path, "procrun.toml", text)
    return error_of(tmp_path).removeprefix(f"{tmp_path}/")


# --- which file -----------------------------------------------------------------------------


def test_no_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path) == Config()


def test_procrun_toml(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    path = write(tmp_path, "procrun.toml", FULL)
    config = load_config(tmp_path)
    assert config.sources == (path,)
    assert config.shutdown_timeout_seconds == 25.0
    assert config.on_give_up is GiveUpPolicy.CONTINUE
    assert config.defaults == {"grace_seconds": 20.0, "env": {"SHARED": "yes", "LEVEL": "info"}}
    assert config.processes["worker"]["grace_seconds"] == 600.0
    assert config.shadowed is None


def test_force_kill_after(tmp_path: Path) -> None:
    assert load_config(tmp_path).force_kill_after_seconds == 3.0
    write(tmp_path, "procrun.toml", 'force_kill_after = "500ms"\n')
    assert load_config(tmp_path).force_kill_after_seconds == 0.5
    assert toml_error(tmp_path, "\nforce_kill_after = -1\n").startswith(
        "procrun.toml:2: force_kill_after: invalid duration"
    )


def test_empty_procrun_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "procrun.toml", "# nothing yet\n")
    assert load_config(tmp_path) == Config(sources=(path,))


def test_pyproject_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pyproject.toml",
        '[project]\nname = "x"\n\n[tool.procrun]\nshutdown_timeout = 20\n\n'
        '[tool.procrun.processes.web]\ngrace = "5s"\n',
    )
    config = load_config(tmp_path)
    assert config.sources == (path,)
    assert config.shutdown_timeout_seconds == 20.0
    assert config.processes == {"web": {"grace_seconds": 5.0}}


def test_pyproject_without_table(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nname = "procrun-app"\n')
    assert load_config(tmp_path) == Config()


def test_unrelated_broken_pyproject_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "[project\n")
    assert load_config(tmp_path) == Config()


def test_broken_pyproject_that_mentions_procrun(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.procrun]\nshutdown_timeout = "25s\n')
    assert error_of(tmp_path) == f"{tmp_path}/pyproject.toml:2: Illegal character '\\n'"


def test_procrun_toml_wins_over_pyproject(tmp_path: Path) -> None:
    toml = write(tmp_path, "procrun.toml", "shutdown_timeout = 10\n")
    pyproject = write(tmp_path, "pyproject.toml", "[tool.procrun]\nshutdown_timeout = 99\n")
    config = load_config(tmp_path)
    assert (config.sources, config.shutdown_timeout_seconds) == ((toml,), 10.0)
    assert config.shadowed == pyproject


def test_pyproject_without_our_table_is_not_shadowed(tmp_path: Path) -> None:
    write(tmp_path, "procrun.toml", "")
    write(tmp_path, "pyproject.toml", "[tool.black]\n# procrun lives elsewhere\n")
    assert load_config(tmp_path).shadowed is None


def test_explicit_file(tmp_path: Path) -> None:
    write(tmp_path, "procrun.toml", "shutdown_timeout = 10\n")
    other = write(tmp_path, "staging.toml", "shutdown_timeout = 5\n")
    config = load_config(tmp_path, other)
    assert (config.sources, config.shutdown_timeout_seconds) == ((other,), 5.0)


def test_explicit_pyproject(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool.procrun]\non_give_up = 'continue'\n")
    assert load_config(Path("/nonexistent"), path).on_give_up is GiveUpPolicy.CONTINUE


def test_explicit_pyproject_without_table(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[project]\n")
    assert error_of(tmp_path, path) == f"{path}: no [tool.procrun] table"


def test_explicit_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    message = error_of(tmp_path, Path("conf/procrun.toml"))
    assert message == f"--config: no such file: {tmp_path / 'conf/procrun.toml'}"


def test_bom_and_crlf(tmp_path: Path) -> None:
    (tmp_path / "procrun.toml").write_bytes(b'\xef\xbb\xbfshutdown_timeout = "3s"\r\n')
    assert load_config(tmp_path).shutdown_timeout_seconds == 3.0


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "procrun.toml").write_bytes(b"# ok\n# caf\xe9\n")
    assert error_of(tmp_path) == (
        f"{tmp_path}/procrun.toml:2: not UTF-8 text (byte 0xe9); save it as UTF-8"
    )


def test_directory_named_procrun_toml(tmp_path: Path) -> None:
    (tmp_path / "procrun.toml").mkdir()
    assert error_of(tmp_path) == f"{tmp_path}/procrun.toml: is a directory, not a TOML file"


def test_path_as_given_in_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "procrun.toml", "grac = 1\n")
    assert error_of(Path(".")).startswith("procrun.toml:1: ")


# --- syntax and validation messages ---------------------------------------------------------


def test_syntax_error_line_without_tomllib_position(tmp_path: Path) -> None:
    text = "[defaults]\ngrace = 1\n\nrestart = always\n"
    assert toml_error(tmp_path, text) == "procrun.toml:4: Invalid value"


def test_syntax_error_at_end_of_file(tmp_path: Path) -> None:
    text = 'shutdown_timeout = "1s"\nx = """open\n\n'
    assert toml_error(tmp_path, text) == "procrun.toml:2: Unterminated string (at end of file)"


def test_integer_too_long_for_python(tmp_path: Path) -> None:
    message = toml_error(tmp_path, "count = 1" + "0" * 5000 + "\n")
    assert message.startswith("procrun.toml: cannot read this TOML: Exceeds the limit")


def test_nesting_too_deep(tmp_path: Path) -> None:
    message = toml_error(tmp_path, "x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert message.startswith("procrun.toml: cannot read this TOML: ")


DEFAULTS_KEYS = (
    "alive, backoff, backoff_max, count, cwd, env, grace, interval, max_memory, max_memory_for, "
    "max_restarts, min_uptime, oneshot, ready, ready_timeout, restart, restart_window, "
    "restart_with, second_signal, second_signal_margin, stop_signal, watch, watch_ignore"
)
VALID_KEYS = DEFAULTS_KEYS.replace("cwd, ", "cwd, depends_on, ")


def test_unknown_process_key(tmp_path: Path) -> None:
    text = '[defaults]\ngrace = "1s"\n\n[processes.web]\nrestart = "always"\n\ngrac = "5s"\n'
    assert toml_error(tmp_path, text) == (
        f'procrun.toml:7: unknown key "grac" in [processes.web]; did you mean "grace"?; '
        f"valid keys: {VALID_KEYS}"
    )


def test_a_misspelt_processes_table_names_its_line(tmp_path: Path) -> None:
    assert toml_error(tmp_path, "# settings\n[process.web]\ngrace = 1\n").startswith(
        'procrun.toml:2: unknown key "process" at the top level; did you mean "processes"?'
    )


def test_unknown_defaults_key(tmp_path: Path) -> None:
    assert toml_error(tmp_path, "[defaults]\ngrace_period = 1\n") == (
        f'procrun.toml:2: unknown key "grace_period" in [defaults]; valid keys: {DEFAULTS_KEYS}'
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert toml_error(tmp_path, "# settings\nshutdown = 3\n") == (
        'procrun.toml:2: unknown key "shutdown" at the top level; did you mean '
        '"shutdown_timeout"?; valid keys: defaults, '
        "force_kill_after, on_give_up, platform_deadline, processes, shutdown_timeout"
    )


def test_unknown_key_in_pyproject(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        "[tool.black]\nline-length = 100\n\n[tool.procrun.processes.web]\ngrace = 1\ngrac = 2\n",
    )
    assert error_of(tmp_path) == (
        f'{tmp_path}/pyproject.toml:6: unknown key "grac" in [tool.procrun.processes.web]; '
        f'did you mean "grace"?; valid keys: {VALID_KEYS}'
    )


def test_unknown_key_written_as_dotted_key(tmp_path: Path) -> None:
    text = "[processes]\nweb.grace = 1\nweb.grac = 2\n"
    assert toml_error(tmp_path, text).startswith('procrun.toml:3: unknown key "grac"')


def test_unknown_key_inside_inline_table_falls_back_to_its_line(tmp_path: Path) -> None:
    text = "# x\nprocesses = { web = { grac = 1 } }\n"
    assert toml_error(tmp_path, text).startswith('procrun.toml:2: unknown key "grac"')


def test_quoted_process_name(tmp_path: Path) -> None:
    text = '[processes."web"]\nrestart = "sometimes"\n'
    assert toml_error(tmp_path, text) == (
        'procrun.toml:2: restart must be one of always, on-failure, never, got "sometimes"'
    )


def test_key_inside_multiline_string_is_not_mistaken(tmp_path: Path) -> None:
    text = '[processes.web]\nenv = { NOTE = """\ncount = 1\n""" }\ncount = "two"\n'
    assert toml_error(tmp_path, text) == (
        'procrun.toml:5: count must be a whole number, 0 or more, got "two"'
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'restart = "sometimes"',
            'restart must be one of always, on-failure, never, got "sometimes"',
        ),
        ("restart = 1", "restart must be one of always, on-failure, never, got 1"),
        (
            'grace = "abc"',
            "grace: invalid duration 'abc': use seconds (30) or a string like \"30s\", "
            '"500ms", "10m"',
        ),
        (
            "grace = -1",
            'grace: invalid duration -1: use seconds (30) or a string like "30s", "500ms", "10m"',
        ),
        ('min_uptime = "1y"', "min_uptime: invalid duration '1y'"),
        ('restart_window = "forever"', "restart_window: invalid duration 'forever'"),
        ('backoff = "fast"', "backoff: invalid duration 'fast'"),
        ('backoff_max = "slow"', "backoff_max: invalid duration 'slow'"),
        ('second_signal_margin = "x"', "second_signal_margin: invalid duration 'x'"),
        ('stop_signal = "TRM"', "stop_signal: unknown signal 'TRM'"),
        ('second_signal = "QUITE"', "second_signal: unknown signal 'QUITE'"),
        (
            "second_signal = true",
            'second_signal must be a signal name like "QUIT", or false for none',
        ),
        ("max_restarts = -1", "max_restarts must be a whole number, 0 or more, got -1"),
        ("max_restarts = 1.5", "max_restarts must be a whole number, 0 or more, got 1.5"),
        ("count = true", "count must be a whole number, 0 or more, got true"),
        ('oneshot = "yes"', 'oneshot must be true or false, got "yes"'),
        ('max_memory = "lots"', "max_memory: invalid size 'lots'"),
        ("cwd = 1", "cwd must be a directory path, got 1"),
        ('cwd = ""', 'cwd must be a directory path, got ""'),
        ('env = "A=1"', 'env must be a table like { KEY = "value" }, got "A=1"'),
        ("env = { PORT = 8000 }", 'env.PORT must be a string, got 8000 (quote it: "8000")'),
        ("env = { DEBUG = true }", "env.DEBUG must be a string, got true"),
        ("env = { LIST = [1] }", "env.LIST must be a string, got an array"),
        ('env = { "A=B" = "1" }', 'env: invalid variable name "A=B"'),
        ('env = { "" = "1" }', 'env: invalid variable name ""'),
        ("grace = 1979-05-27", "grace: invalid duration datetime.date(1979, 5, 27)"),
    ],
)
def test_invalid_process_values(tmp_path: Path, line: str, message: str) -> None:
    text = f"[processes.web]\n# {line}\n{line}\n"
    assert toml_error(tmp_path, text).startswith(f"procrun.toml:3: {message}")


def test_missing_cwd(tmp_path: Path) -> None:
    text = '[processes.web]\ncwd = "app"\n'
    assert toml_error(tmp_path, text) == (
        f'procrun.toml:2: cwd "app" is not a directory ({tmp_path / "app"})'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('shutdown_timeout = "soon"', "procrun.toml:1: shutdown_timeout: invalid duration 'soon'"),
        (
            'on_give_up = "panic"',
            'procrun.toml:1: on_give_up must be one of shutdown, continue, got "panic"',
        ),
        ("defaults = 1", "procrun.toml:1: defaults must be a table, got 1"),
        ("processes = []", "procrun.toml:1: processes must be a table, got an array"),
        ("[processes]\nweb = 1", "procrun.toml:2: web must be a table, got 1"),
        (
            '[processes."web.1"]\ngrace = 1',
            'procrun.toml:1: invalid process name "web.1": use only letters, digits, "_" and "-" '
            "([A-Za-z0-9_-]+)",
        ),
    ],
)
def test_invalid_top_level_values(tmp_path: Path, text: str, message: str) -> None:
    assert toml_error(tmp_path, text + "\n").startswith(message)


def test_pyproject_table_of_the_wrong_type(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool]\nprocrun = "yes"\n')
    assert error_of(tmp_path) == (
        f'{tmp_path}/pyproject.toml:2: [tool.procrun] must be a table, got "yes"'
    )


def test_value_messages_in_pyproject(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.procrun.processes.web]\n\nrestart = "no"\n')
    assert error_of(tmp_path) == (
        f'{tmp_path}/pyproject.toml:3: restart must be one of always, on-failure, never, got "no"'
    )


# --- settings_for ---------------------------------------------------------------------------


def test_settings_without_config_are_the_defaults() -> None:
    assert settings_for("web", "python app.py", Config()) == ProcessSettings()


def test_celery_worker_rule() -> None:
    settings = settings_for("jobs", "celery -A proj worker -l info", Config())
    assert settings.grace_seconds == CELERY_WORKER_GRACE_SECONDS
    assert settings.second_signal is signal.SIGQUIT
    assert settings_for("worker", "python jobs.py", Config()).second_signal is signal.SIGQUIT
    assert settings_for("beat", "celery -A proj beat", Config()) == ProcessSettings()


def test_full_file(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    write(tmp_path, "procrun.toml", FULL)
    config = load_config(tmp_path)
    assert settings_for("worker", "celery -A proj worker", config) == ProcessSettings(
        grace_seconds=600.0,
        stop_signal=signal.SIGINT,
        second_signal=signal.SIGQUIT,
        second_signal_margin_seconds=15.0,
        restart=RestartPolicy.ON_FAILURE,
        min_uptime_seconds=2.0,
        max_restarts=3,
        restart_window_seconds=60.0,
        backoff_initial_seconds=0.25,
        backoff_max_seconds=60.0,
        cwd=tmp_path / "app",
        env={"SHARED": "yes", "LEVEL": "debug", "QUEUE": "default"},
        oneshot=False,
        count=2,
        max_memory_bytes=400_000_000,
    )
    web = settings_for("web", "gunicorn app:app", config)
    assert (web.grace_seconds, web.env) == (20.0, {"SHARED": "yes", "LEVEL": "info"})


def test_the_celery_rule_beats_defaults_but_not_the_process_table(tmp_path: Path) -> None:
    write(tmp_path, "procrun.toml", '[defaults]\ngrace = "20s"\nsecond_signal = false\n')
    settings = settings_for("worker", "celery -A proj worker", load_config(tmp_path))
    assert (settings.grace_seconds, settings.second_signal) == (600.0, signal.SIGQUIT)
    assert settings_for("web", "gunicorn app", load_config(tmp_path)).grace_seconds == 20.0
    write(tmp_path, "procrun.toml", '[processes.worker]\ngrace = "20s"\nsecond_signal = false\n')
    settings = settings_for("worker", "celery -A proj worker", load_config(tmp_path))
    assert (settings.grace_seconds, settings.second_signal) == (20.0, None)


def test_process_table_applies_after_defaults(tmp_path: Path) -> None:
    write(
        tmp_path,
        "procrun.toml",
        '[defaults]\nrestart = "never"\ncount = 2\n[processes.web]\nrestart = "always"\n',
    )
    settings = settings_for("web", "gunicorn", load_config(tmp_path))
    assert (settings.restart, settings.count) == (RestartPolicy.ALWAYS, 2)


def test_cwd_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "deploy" / "app").mkdir(parents=True)
    path = write(tmp_path / "deploy", "procrun.toml", '[processes.web]\ncwd = "app"\n')
    settings = settings_for("web", "gunicorn", load_config(tmp_path, path))
    assert settings.cwd == tmp_path / "deploy" / "app"


def test_absolute_cwd(tmp_path: Path) -> None:
    write(tmp_path, "procrun.toml", f'[processes.web]\ncwd = "{tmp_path}"\n')
    assert settings_for("web", "x", load_config(tmp_path)).cwd == tmp_path


def test_unknown_process_names(tmp_path: Path) -> None:
    write(tmp_path, "procrun.toml", "[processes.web]\n[processes.wrker]\n[processes.beat]\n")
    procfile = parse_procfile("web: a\nworker: b\nbeat: c\n", Path("Procfile"))
    assert unknown_process_names(load_config(tmp_path), procfile) == ["wrker"]


# --- arbitrary input ------------------------------------------------------------------------

_DURATIONS = ['"30s"', "10", "1.5", '"abc"', "-1", "inf"]
# For each key: mostly valid values, a few invalid ones, so that validation is reached often.
_TOML_VALUES = {
    "shutdown_timeout": _DURATIONS,
    "on_give_up": ['"shutdown"', '"continue"', '"panic"'],
    "grace": _DURATIONS,
    "backoff": _DURATIONS,
    "second_signal_margin": _DURATIONS,
    "restart": ['"always"', '"on-failure"', '"sometimes"'],
    "count": ["0", "2", "-1", "true"],
    "max_restarts": ["3", "1.5"],
    "stop_signal": ['"TERM"', '"int"', "15", '"TRM"'],
    "second_signal": ['"QUIT"', "false", "true"],
    "max_memory": ['"400MB"', '"1GiB"', '"lots"'],
    "oneshot": ["true", '"yes"'],
    "cwd": ['"."', '"missing-dir"', "1"],
    "env": ['{ A = "1" }', "{ A = 1 }", '"A=1"', '{ A = """\nx = 1\n""" }'],
    "ready": ['{ tcp = "127.0.0.1:$PORT" }', "false", "true", '{ tpc = "x" }', '{ log = "(" }'],
    "ready_timeout": _DURATIONS,
    "interval": ['"0s"', '"250ms"'],
    "watch": ['["app/**/*.py"]', '"*.py"', "[1]", '[""]'],
    "watch_ignore": ['["*_test.py"]', "true"],
    "alive": ['{ exec = "true", every = "10s" }', '{ watchdog = "30s" }', '{ log = "x" }'],
    "depends_on": ['["web"]', '{ web = "ready" }', '{ web = "done" }', '"web"'],
    "restart_with": ["true", "1"],
    "grac": ["1"],
    "web.grace": ['"5s"', "{ x = 1 }"],
    "x": ["1", "1979-05-27", "[1, 2]"],
}
_TOP_KEYS = ["shutdown_timeout", "on_give_up"]
_PROCESS_KEYS = [key for key in _TOML_VALUES if key not in ("shutdown_timeout", "on_give_up")]


def _assignments(keys: list[str], max_size: int) -> st.SearchStrategy[list[str]]:
    pairs = st.sampled_from(keys).flatmap(
        lambda key: st.sampled_from(_TOML_VALUES[key]).map(lambda value: (key, value))
    )
    return st.lists(pairs, max_size=max_size, unique_by=lambda kv: kv[0]).map(
        lambda kvs: [f"{key} = {value}" for key, value in kvs]
    )


_HEADERS = st.sampled_from(
    ["[defaults]", "[processes.web]", "[processes.worker]", '[processes."a b"]', "[processes]",
     "[[processes.beat]]", "[x]"]
)  # fmt: skip
_SECTIONS = st.lists(
    st.tuples(
        _HEADERS,
        _assignments(_PROCESS_KEYS, 4),
    ),
    max_size=4,
    unique_by=lambda section: section[0],
)
_NOISE = st.one_of(st.sampled_from(["", "# comment", "  ", "[", "a = "]), st.text(max_size=20))


@st.composite
def _tomlish(draw: st.DrawFn) -> str:
    """Mostly well-formed TOML, so validation is reached, sometimes with a line of noise."""
    lines = draw(_assignments(_TOP_KEYS, 2))
    for header, assignments in draw(_SECTIONS):
        lines += [header, *assignments]
    if draw(st.integers(0, 3)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(_NOISE))
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(_tomlish(), st.text()))
def test_any_tomlish_text_loads_or_fails_with_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    directory = tmp_path_factory.mktemp("config")
    (directory / "procrun.toml").write_bytes(text.encode("utf-8"))
    try:
        config = load_config(directory)
    except ConfigError as exc:
        message = str(exc)
    else:
        for name in config.processes:
            settings_for(name, "celery worker", config)
        return
    match = re.match(rf"{re.escape(str(directory))}/procrun\.toml(?::(\d+))?: ", message)
    assert match, message
    if match.group(1) is not None:
        assert 1 <= int(match.group(1)) <= text.count("\n") + 1

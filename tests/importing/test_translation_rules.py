"""The translation rules one by one, checked against their oracles: supervisord's own splitting
(shlex.split after `%` expansion) against what /bin/sh makes of the Procfile command,
supervisor's environment parser against ours, and procrun's TOML and .env readers against what
the writer wrote."""

from __future__ import annotations

import os
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from supervisor.datatypes import dict_of_key_value_pairs  # type: ignore[import-untyped]

from procrun.errors import ConfigError
from procrun.importing.environment import Variable, parse_environment
from procrun.importing.expansions import EnvRef, InstanceNumber, expand
from procrun.importing.outcome import Setting
from procrun.importing.shellwords import shell_command
from procrun.importing.writer import _dotenv, _table
from procrun.project.environ import load_env_files

# supervisord pastes values into the text before splitting it, so a quote in a value would be
# syntax to it; the shell keeps a value whole, and matches a bare `*` against file names
# (shellwords.py). Values with neither behave the same under both.
ENV = {"A": "spaced  value", "B": "b-b", "EMPTY": ""}


def _sh_argv(command: str, env: dict[str, str]) -> list[str]:
    """The words /bin/sh passes to a program for `command`'s arguments."""
    done = subprocess.run(
        ["/bin/sh", "-c", f"printf '%s\\0' {command}"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        timeout=10,
        check=True,
    )
    return done.stdout.decode().split("\0")[:-1]


def _supervisord_argv(text: str) -> list[str]:
    """What supervisord executes: the text expanded with its environment, then shlex.split."""
    return shlex.split(text % {f"ENV_{k}": v for k, v in ENV.items()})


def _procfile_command(text: str) -> str:
    return shell_command(expand(text, {}, "test", runtime_env=True), "test").text


@pytest.mark.parametrize(
    "text",
    [
        'gunicorn -c app/gunicorn.conf.py "app.web:create_application()"',
        "python -c \"print('a; b && c')\" '*' \\# x#y ~/path",
        'prog \'it\'\'s\' "say \\"hi\\"" back\\\\slash "\\n stays" $HOME `date`',
        'prog --a=%(ENV_A)s "--quoted=%(ENV_A)s" %(ENV_B)s x%(ENV_EMPTY)sy "%(ENV_EMPTY)s"',
        "prog '' \"\" 100%% done",
    ],
)
def test_sh_runs_the_argv_supervisord_would(text: str) -> None:
    assert _sh_argv(_procfile_command(text), ENV) == _supervisord_argv(text)


_WORD_CHARS = st.sampled_from([*"ab =-*#;&|<>$`\\'\"~\t", "%%", "%(ENV_A)s", "%(ENV_B)s"])


@settings(max_examples=150, deadline=None)
@given(st.lists(_WORD_CHARS, min_size=1, max_size=14).map("".join))
def test_any_command_supervisord_can_split(tail: str) -> None:
    text = f"prog {tail}"
    try:
        expected = _supervisord_argv(text)
    except ValueError:  # unbalanced quotes: the importer refuses it (test_bad_input)
        with pytest.raises(ConfigError):
            _procfile_command(text)
        return
    assert _sh_argv(_procfile_command(text), ENV) == expected


def test_sh_c_is_unwrapped_and_its_last_program_execd() -> None:
    command = shell_command(
        expand('/bin/sh -c "migrate && exec gunicorn -b :%(ENV_PORT)s"', {}, "t", runtime_env=True),
        "t",
    )
    assert (command.text, command.unwrapped) == ("migrate && gunicorn -b :${PORT}", True)
    bash = shell_command(expand('bash -c "a && b"', {}, "t", runtime_env=True), "t")
    assert bash.text == "bash -c 'a && b'"  # bash's syntax is not /bin/sh's: left as it is


def test_the_instance_number_is_the_number_in_ps() -> None:
    parts = expand(
        "-n w%(process_num)s@%%h", {"process_num": InstanceNumber()}, "t", runtime_env=True
    )
    assert parts == ("-n w", InstanceNumber(), "@%h")
    assert _sh_argv(shell_command(parts, "t").text, {"PS": "worker.12"}) == ["-n", "w12@%h"]


def test_expansions() -> None:
    names = {"program_name": "web", "process_num": 3, "here": "/srv"}
    assert expand(
        "%(here)s/%(program_name)s-%(process_num)02d %%", names, "t", runtime_env=True
    ) == ("/srv/web-03 %",)
    assert expand("%(ENV_HOME)s/x", names, "t", runtime_env=True) == (EnvRef("HOME"), "/x")
    with pytest.raises(
        ConfigError, match=r'unknown expansion %\(progam_name\)s; did you mean "program_name"'
    ):
        expand("%(progam_name)s", names, "t", runtime_env=True)
    with pytest.raises(ConfigError, match=r"the environment is text; write %\(ENV_N\)s"):
        expand("%(ENV_N)d", names, "t", runtime_env=True)
    with pytest.raises(ConfigError, match=r"%\(program_name\)d needs a number"):
        expand("%(program_name)d", names, "t", runtime_env=True)
    with pytest.raises(ConfigError, match="X is not set in the environment"):
        expand("%(ENV_X)s", names, "t", runtime_env=False)


@pytest.mark.parametrize(
    "text",
    [
        'A="1",B="two, three",C=plain/path:1',
        "A = 1 , B='single' ,C=\"x=y\"",
        'KEY="a",KEY="b"',
        "PYTHONPATH=/app/src:/app/lib,DEBUG=0",
        "URL=\"postgres://u:p@h/db\",EMPTY=''",
    ],
)
def test_environment_pairs_as_supervisord_reads_them(text: str) -> None:
    ours = {v.name: v.literal for v in parse_environment((text,), "t")}
    assert ours == dict_of_key_value_pairs(text)


def test_which_variables_look_like_secrets() -> None:
    def secret(name: str, value: str) -> bool:
        return Variable(name, (value,)).secret

    assert secret("DJANGO_SECRET_KEY", "x")
    assert secret("db_password", "x")
    assert secret("GITHUB_TOKEN", "x")
    assert secret("FLOWER_BASIC_AUTH", "user:pw")
    assert secret("DATABASE_URL", "postgres://app:pw@db:5432/app")
    assert secret("BROKER", "rediss://:pw@redis:6380/0")
    assert not secret("DATABASE_URL", "postgres://db:5432/app")
    assert not secret("REDIS_URL", "redis://user@redis/0")
    assert not secret("LOG_LEVEL", "info")
    assert not Variable("API_KEY", (EnvRef("API_KEY"),)).secret  # a reference holds no secret


WEIRD = ['quote " and \\ backslash', "it's", "new\nline", "${NOT_EXPANDED} $x #hash", "café ☕"]


def test_toml_values_read_back_unchanged() -> None:
    env = {f"V{i}": value for i, value in enumerate(WEIRD)} | {"dotted.name": "1"}
    lines = _table("processes.web", [Setting("grace", "10s", "c"), Setting("env", env, "c")], "o")
    data = tomllib.loads("\n".join(lines))
    assert data == {"processes": {"web": {"grace": "10s", "env": env}}}


def test_dotenv_values_read_back_unchanged(tmp_path: Path) -> None:
    secrets = {f"S{i}": value for i, value in enumerate(WEIRD) if "${" not in value}
    path = tmp_path / ".env"
    path.write_text(_dotenv(secrets, "supervisord.conf"))
    assert load_env_files([path], True, environ={}) == secrets

"""supervisord's own reading of a config (the `supervisor` package, dev extra), and the argv
each of its processes would execute next to the argv procrun runs for each imported instance.

Both sides really run: supervisord's argv is executed as supervisord executes it (no shell),
procrun's command through procrun's own shell argv, with the programs on PATH replaced by a
script that records its argv. The last program each side runs must get the same words.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from supervisor import options  # type: ignore[import-untyped]

from procrun.project.shell import shell_argv
from tests.importing.run import DEADLINE_SECONDS, procfile_of, toml_of

RECORDED_PROGRAMS = ("python", "gunicorn", "celery", "sleep", "uvicorn")
RECORDER = """#!/bin/sh
printf '%s\\0' "${0##*/}" "$@" > "$ARGV_OUT"
"""
RUN_ENV = {"PORT": "8000", "HOSTNAME": platform.node()}


def conf_env(conf: Path) -> dict[str, str]:
    """RUN_ENV, and a value for every other variable `conf` reads that is not set here (what an
    example expects from its platform)."""
    wanted = set(re.findall(r"%\(ENV_(\w+)\)", conf.read_text())) - set(os.environ)
    return {**dict.fromkeys(sorted(wanted), "1"), **RUN_ENV}


def supervisord_processes(conf: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The process configs supervisord makes of `conf` (a ValueError when it rejects it), with
    conf_env() in its environment; `user=` is taken as valid whether or not the user exists."""
    for name, value in conf_env(conf).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(options, "name_to_uid", lambda name: 0)
    server = options.ServerOptions()
    server.configfile = str(conf)
    server.here = str(conf.absolute().parent)
    section = server.read_config(str(conf))
    return [
        process
        for group in section.process_group_configs
        if type(group) is options.ProcessGroupConfig
        for process in group.process_configs
    ]


@contextmanager
def recorder(tmp_path: Path, conf: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """An environment whose PATH finds the recording script first (conf_env() besides), and
    the file the script writes."""
    bin_dir = tmp_path / "recorded-bin"
    bin_dir.mkdir(exist_ok=True)
    for name in RECORDED_PROGRAMS:
        script = bin_dir / name
        script.write_text(RECORDER)
        script.chmod(0o755)
    out = tmp_path / "argv"
    env = {**os.environ, **conf_env(conf), "PATH": f"{bin_dir}:/usr/bin:/bin", "ARGV_OUT": str(out)}
    yield env, out


def _run(argv: list[str], env: dict[str, str], out: Path, cwd: Path) -> tuple[str, ...]:
    out.unlink(missing_ok=True)
    subprocess.run(argv, env=env, cwd=cwd, timeout=DEADLINE_SECONDS, check=True)
    return tuple(word.decode() for word in out.read_bytes().split(b"\0")[:-1])


def supervisord_argvs(conf: Path, processes: list[Any], tmp_path: Path) -> list[tuple[str, ...]]:
    with recorder(tmp_path, conf) as (env, out):
        argvs = []
        for process in processes:
            argv = shlex.split(process.command)  # what supervisord's spawn executes
            assert "/" in argv[0] or argv[0] in (*RECORDED_PROGRAMS, "sh"), argv
            argvs.append(_run(argv, env, out, tmp_path))
        return sorted(argvs)


def procrun_argvs(conf: Path, project: Path, tmp_path: Path) -> list[tuple[str, ...]]:
    """Every instance of the Procfile imported from `conf` into `project`, run as procrun runs
    it (PS set, `count` of each; a type with count 0 once)."""
    settings = toml_of(project).get("processes", {})
    with recorder(tmp_path, conf) as (env, out):
        argvs = []
        for name, command in procfile_of(project).items():
            count = settings.get(name, {}).get("count", 1) or 1
            for index in range(1, count + 1):
                instance_env = {**env, "PS": f"{name}.{index}"}
                argvs.append(_run(list(shell_argv(command)), instance_env, out, tmp_path))
        return sorted(argvs)

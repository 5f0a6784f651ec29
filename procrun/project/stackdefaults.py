"""Readiness defaults for the stack's programs, recognised from the command, so that
`web: gunicorn app:app` counts as ready when gunicorn says so, with no procrun.toml at all.

Each default is the signal the program itself gives once it serves (docs: FACTS.md, "Readiness
signals"). A log line is a signal only if the command runs the program at a level that prints
it: where the command silences it there is no default (a probe that can never pass would fail
the process at ready_timeout), and `procrun check` says why in a note. Any `ready` in
procrun.toml, `ready = false` included, replaces the default (config.settings_for).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import PurePosixPath

from procrun.project.celery_worker import runs_celery_worker
from procrun.project.shell import command_words, last_step
from procrun.settings import Probe, ProbeKind

# Any node name: `-n %n-${PS}@%h` (README, several workers) logs `host-worker.1@host ready.`
CELERY_READY = r"\S+@\S+ ready\."
UVICORN_READY = r"Uvicorn running on "
# Redis 7.2 says "Ready to accept connections tcp" (or unix); 7.0 with only a unix socket says
# "The server is now ready to accept connections at <path>".
REDIS_READY = r"[Rr]eady to accept connections"

_PYTHON = re.compile(r"python(?:[0-9]+(?:\.[0-9]+)?)?")
_PYTHON_OPTIONS_WITH_VALUE = frozenset({"-X", "-W", "-Q"})
# The levels at which each program prints its ready line (Celery's default, WARNING, does not).
_CELERY_PRINTING = frozenset({"info", "debug", "10", "20"})
_UVICORN_SILENCING = frozenset({"warning", "error", "critical"})
_REDIS_PRINTING = frozenset({"debug", "verbose", "notice"})


def stack_default(name: str, command: str) -> tuple[Probe | None, str | None]:
    """The readiness probe a process gets when procrun.toml sets none, and else perhaps a note
    for `procrun check` saying why the program it recognised gets no default."""
    if runs_celery_worker(command):
        level = option_value(_all_words(command), "-l", "--loglevel")
        if level is not None and level.lower() in _CELERY_PRINTING:
            return _log(CELERY_READY, "a Celery worker"), None
        return None, (
            f'{name}: no readiness default: Celery logs "celery@<host> ready." only at '
            '--loglevel INFO; add "-l info" or set ready in procrun.toml'
        )
    # `migrate && gunicorn ...` ends with gunicorn leading (exec'd): it gets gunicorn's default.
    program, args = _program(last_step(command) or command)
    if program == "gunicorn":
        # The arbiter sends READY=1 to NOTIFY_SOCKET once its listeners are bound.
        return Probe(ProbeKind.NOTIFY, origin="default for gunicorn"), None
    if program == "uvicorn":
        level = option_value(args, None, "--log-level")
        if level is not None and level.lower() in _UVICORN_SILENCING:
            return None, (
                f'{name}: no readiness default: uvicorn logs "Uvicorn running on" only at '
                f'--log-level info; drop "--log-level {level}" or set ready in procrun.toml'
            )
        return _log(UVICORN_READY, "uvicorn"), None
    if program == "redis-server":
        level = option_value(args, None, "--loglevel")
        logfile = option_value(args, None, "--logfile")
        if (level is not None and level.lower() not in _REDIS_PRINTING) or logfile:
            return None, (
                f'{name}: no readiness default: redis-server logs "Ready to accept connections" '
                "to stdout only at --loglevel notice and without --logfile; set ready in "
                "procrun.toml"
            )
        return _log(REDIS_READY, "redis-server"), None
    return None, None


def _log(pattern: str, program: str) -> Probe:
    return Probe(ProbeKind.LOG, pattern, origin=f"default for {program}")


def _program(command: str) -> tuple[str | None, list[str]]:
    """The program a simple command runs, by file name (`python -m gunicorn` runs gunicorn),
    and its arguments. A compound command gets no default: which program leads is unclear."""
    words = command_words(command)
    if not words:
        return None, []
    program, args = PurePosixPath(words[0]).name, words[1:]
    if not _PYTHON.fullmatch(program):
        return program, args
    skip = False
    for i, word in enumerate(args):
        if skip:
            skip = False
        elif word == "-m" and i + 1 < len(args):
            return args[i + 1], args[i + 2 :]
        elif word.startswith("-m") and len(word) > 2:
            return word[2:], args[i + 1 :]
        elif word in _PYTHON_OPTIONS_WITH_VALUE:
            skip = True
        elif not word.startswith("-"):
            break  # a script: python app.py
    return None, []


def option_value(words: Sequence[str], short: str | None, long: str) -> str | None:
    """The value of the last `-l info`, `-linfo`, `--loglevel=info` or `--loglevel info` in
    `words` (the last one wins, as click and argparse take it); None when there is none."""
    value = None
    for i, word in enumerate(words):
        if word in (long, short):
            value = words[i + 1] if i + 1 < len(words) else None
        elif word.startswith(f"{long}="):
            value = word.removeprefix(f"{long}=")
        elif short is not None and word.startswith(short) and not word.startswith("--"):
            value = word.removeprefix(short)
    return value


def _all_words(command: str) -> list[str]:
    """The command's words, and the words of any word holding spaces (`sh -c "celery ..."`)."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: the shell will complain, but still guess the intent
        words = command.split()
    found: list[str] = []
    for word in words:
        nested = word != command and any(c.isspace() for c in word)
        found += _all_words(word) if nested else [word]
    return found

"""`procrun run`: one command with the formation's environment, procrun replaced by it.

`procrun run NAME [ARGS...]` runs the Procfile entry NAME as `start` would run NAME.1 (its PORT,
PS, procrun.toml `env` and cwd, through /bin/sh); any other COMMAND runs with the environment a
process gets from [defaults] (real environment > procrun.toml `env` > .env, the virtualenv's bin
first on PATH, no PS or PORT of procrun's own) in the current directory.

procrun does not supervise it: it execs it, so the pid, the terminal, stdin, job control, the
signals and the exit status are the command's own, and nothing of procrun is left in the process
tree. It imports click and the project loader only (no asyncio, structlog or psutil): a one-off
command waits for Python, the CLI and the project files, not for the supervisor's imports.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

from procrun.quoting import one_line

if TYPE_CHECKING:
    from procrun.project.loader import Project, ProjectOptions

# A shell's codes for a command it could not run: not found, found but not runnable.
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126

_FORCED = "procrun.run.forced"  # ctx.meta key: a `--` came before COMMAND

_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

HELP = """Run COMMAND with the formation's environment, replacing procrun.

The environment is the one `start` gives its processes: the real environment beats procrun.toml
`env` ([defaults]), which beats the .env files (-e); the virtualenv procrun runs from comes
first on PATH. procrun execs COMMAND: the terminal, Ctrl-C, a debugger's prompt and the exit
status are COMMAND's own.

A NAME from the Procfile wins over a program of that name: `procrun run web` runs the web
entry's command through /bin/sh, as `start` runs web.1 (its PORT, PS=web.1, its procrun.toml env
and cwd), with ARGS appended. `procrun run -- NAME` or a path (`./web`) runs the program instead.

procrun's options come before COMMAND; everything after it is COMMAND's.
"""


class CannotRun(Exception):
    """The command could not be started; said the way a shell says it, with a shell's code."""

    def __init__(self, program: str, reason: str, code: int) -> None:
        super().__init__(f"{program}: {reason}")
        self.code = code


class _RunCommand(click.Command):
    """Notes whether COMMAND followed a `--`, which click's parser drops: `run -- web` is the
    program `web`, not the Procfile entry."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)
        rest = super().parse_args(ctx, args)
        words = ctx.params.get("command") or ()
        ctx.meta[_FORCED] = len(given) > len(words) and given[-len(words) - 1] == "--"
        return rest


def run_command(
    with_project_options: _Decorator,
    project_options: Callable[..., ProjectOptions],
) -> click.Command:
    """The `run` command, given the CLI's shared project options and how they become
    ProjectOptions (procrun/cli/main.py), so that `run` reads a project exactly as `start`."""

    @click.command(
        "run",
        cls=_RunCommand,
        help=HELP,
        short_help="Run a command with the formation's environment.",
        context_settings={"allow_interspersed_args": False},
    )
    @with_project_options
    @click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
    def run(command: tuple[str, ...], **project: Any) -> int:
        forced = bool(click.get_current_context().meta.get(_FORCED))
        try:
            # A missing program is the exec's to report (127), and only for the one that runs:
            # `procrun run pip install gunicorn` must work while gunicorn is missing.
            options = project_options(project, check_programs=False)
            run_oneoff(command, options, forced=forced)
        except CannotRun as error:
            sys.stderr.write(f"procrun run: {one_line(str(error))}\n")
            return error.code

    return run


def run_oneoff(words: Sequence[str], options: ProjectOptions, *, forced: bool) -> NoReturn:
    """Exec `words` (a Procfile entry and extra arguments, or a command) in the project's
    environment; CannotRun if it cannot be started, ProcrunError for bad project input."""
    from procrun.project.loader import load_project

    environ = dict(os.environ)
    project = load_project(options, environ)  # every file checked, as by `start` and `check`
    name, *args = words
    if not forced and project.procfile.get(name) is not None:
        argv, env = _entry_command(project, name, args)
        _replace_process(argv[0], argv, env)
    env = plain_environment(project, options, environ)
    _replace_process(find_program(name, env.get("PATH", os.defpath)), words, env)


def _entry_command(
    project: Project, name: str, args: Sequence[str]
) -> tuple[Sequence[str], Mapping[str, str]]:
    """The argv and environment of `name`'s first instance, as `start` would spawn it, with
    `args` shell-quoted onto its command; the process's cwd becomes ours."""
    import shlex

    from procrun.project.shell import shell_argv

    # One instance whatever the counts (a worker kept at count 0 in development still runs);
    # `release` is the formation's release, any other name its one process.
    formation = project.recipe(only=(name,), run_release=True, counts={name: 1})
    spec = formation.release or formation.processes[0]
    os.chdir(spec.cwd)
    if not args:
        return spec.argv, spec.env
    return shell_argv(f"{spec.command} {shlex.join(args)}"), spec.env


def plain_environment(
    project: Project, options: ProjectOptions, environ: Mapping[str, str]
) -> dict[str, str]:
    """What a process gets before its own settings and procrun's PS and PORT: the real
    environment over [defaults] `env` over the .env files, by the loader's and formation's
    rules (procrun/project/loader.py, procrun/project/formation.py)."""
    from procrun.project.environ import load_env_files, merge_environment
    from procrun.project.formation import MANAGER_ENV

    dotenv_paths = options.env_files or (project.root / ".env",)
    env = merge_environment(environ, load_env_files(dotenv_paths, bool(options.env_files)))
    if project.venv_bin is not None:
        env["PATH"] = os.pathsep.join(filter(None, (str(project.venv_bin), env.get("PATH"))))
    # Overrides hold validated ProcessSettings values: `env` is a str -> str mapping.
    defaults = cast("Mapping[str, str]", project.config.defaults.get("env", {}))
    env.update((key, value) for key, value in defaults.items() if key not in environ)
    for key in MANAGER_ENV:  # addressed to procrun by its own manager, as formation drops them
        env.pop(key, None)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def find_program(program: str, search_path: str) -> str:
    """The file a shell would run for `program`: itself when it names a path, else the first
    executable file of that name on `search_path`. CannotRun with 127 when there is none,
    126 when there is one but it cannot be run."""
    if "/" in program:
        candidates = [program]
    else:
        candidates = [os.path.join(d or ".", program) for d in search_path.split(os.pathsep)]
    refusal: str | None = None
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            refusal = refusal or "Permission denied"
        elif "/" in program and os.path.isdir(candidate):  # on PATH, a directory is skipped
            refusal = "Is a directory"
    if refusal is not None:
        raise CannotRun(program, refusal, EXIT_NOT_EXECUTABLE)
    if "/" in program:
        raise CannotRun(program, "No such file or directory", EXIT_NOT_FOUND)
    raise CannotRun(program, "command not found", EXIT_NOT_FOUND)


def _replace_process(executable: str, argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    """exec, with what a process inherits across exec put back to a clean state."""
    sys.stdout.flush()
    sys.stderr.flush()
    reset_signals()
    try:
        os.execve(executable, list(argv), dict(env))
    except OSError as error:  # e.g. a script whose #! interpreter is missing
        code = EXIT_NOT_FOUND if error.errno == errno.ENOENT else EXIT_NOT_EXECUTABLE
        raise CannotRun(argv[0], error.strerror or str(error), code) from None


PYTHON_IGNORED = (signal.SIGPIPE, signal.SIGXFSZ)


def reset_signals() -> None:
    """Undo what Python itself changed, and only that: exec resets handled signals but keeps
    ignored ones, and Python ignores SIGPIPE and SIGXFSZ (a `yes | head` would never end).
    What procrun was given is passed on, as a shell passes it: `nohup procrun run job` still
    ignores SIGHUP, and a mask is the caller's to set."""
    for sig in PYTHON_IGNORED:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)

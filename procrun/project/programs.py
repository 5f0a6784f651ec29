"""Is the program of every command there? Checked before anything starts, so a typo (`uvicron`)
is one error naming the Procfile line instead of a crash loop that gives up a minute later."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from procrun.errors import ConfigError
from procrun.project.shell import program_of
from procrun.quoting import did_you_mean, excerpt
from procrun.settings import ProcessSpec

# Builtins of sh that a simple command may start with; they are not on PATH.
_SHELL_BUILTINS = frozenset(
    {".", ":", "cd", "eval", "export", "set", "source", "trap", "ulimit", "umask", "wait"}
)


def check_programs(specs: Iterable[ProcessSpec]) -> None:
    """ConfigError for the first command whose program cannot be found: on the process's own
    PATH, or relative to its working directory when the name has a slash."""
    seen: set[str] = set()
    for spec in specs:
        if spec.kind in seen:  # one look per process type, not per instance (-c s=1000)
            continue
        seen.add(spec.kind)
        program = program_of(spec.command)
        if program is None or program in _SHELL_BUILTINS:
            continue
        path = spec.env.get("PATH", os.defpath)
        if "/" in program:
            target = spec.cwd / program
            if not (target.is_file() and os.access(target, os.X_OK)):
                raise ConfigError(
                    f'{spec.source}: "{excerpt(program)}" is not an executable file ({target})'
                )
        elif not _on_path(program, path):
            raise ConfigError(
                f'{spec.source}: "{excerpt(program)}" not found on PATH'
                f"{did_you_mean(program, _executables(path))} (PATH={excerpt(path, 200)})"
            )


def busy_port_warnings(specs: Iterable[ProcessSpec], web_kind: str = "web") -> list[str]:
    """The web instances (Heroku's convention: the type that gets the traffic on $PORT) whose
    PORT something else holds already: they would fail to bind, restart, and give up later."""
    import socket  # only here: the supervisor has no other use for it at start

    warnings = []
    for spec in specs:
        port = spec.env.get("PORT", "")
        if spec.kind != web_kind or not port.isdigit():
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not busy
            try:
                probe.bind(("0.0.0.0", int(port)))
            except OSError as error:
                warnings.append(
                    f"{spec.source}: {spec.name}'s PORT {port} is not free ({error.strerror}): "
                    "stop what holds it, or set PORT or -p"
                )
    return warnings


def _on_path(program: str, path: str) -> bool:
    # Not shutil.which: shutil imports bz2 and lzma, which would stay mapped in the supervisor.
    return any(
        os.path.isfile(candidate) and os.access(candidate, os.X_OK)
        for candidate in (os.path.join(d or ".", program) for d in path.split(os.pathsep))
    )


def _executables(path: str) -> set[str]:
    """Every program name on `path`, for the suggestion (read only when one is missing)."""
    names: set[str] = set()
    for directory in path.split(os.pathsep):
        try:
            names.update(entry.name for entry in Path(directory or ".").iterdir())
        except OSError:
            continue
    return names

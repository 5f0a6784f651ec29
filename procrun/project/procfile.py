"""Procfile text -> named commands, in the Heroku/foreman format; every error carries file:line.

A line is `name: command`, with whitespace around both trimmed. Blank lines and lines starting with
`#` are ignored. Anything else is an error rather than skipped: a silently dropped line is a
process that silently never runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from procrun.errors import ConfigError
from procrun.project.textfile import read_text
from procrun.quoting import excerpt

PROCESS_NAME_PATTERN = "[A-Za-z0-9_-]+"
_PROCESS_NAME = re.compile(PROCESS_NAME_PATTERN)

RELEASE_PROCESS = "release"
"""The Heroku convention: a one-off command run before the processes start (migrations)."""


@dataclass(frozen=True)
class ProcfileEntry:
    name: str
    command: str
    line: int
    """1-based line number in the Procfile, for messages."""


@dataclass(frozen=True)
class Procfile:
    path: Path
    """The path as the user gave it, so messages name the file the way they know it."""
    entries: tuple[ProcfileEntry, ...]

    def get(self, name: str) -> ProcfileEntry | None:
        return next((entry for entry in self.entries if entry.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.entries)


def is_valid_process_name(name: str) -> bool:
    return _PROCESS_NAME.fullmatch(name) is not None


def parse_procfile(text: str, path: Path) -> Procfile:
    """Parse Procfile `text`; `path` only names the file in messages and in the result."""
    entries: list[ProcfileEntry] = []
    first_line: dict[str, int] = {}
    # Split on "\n" only: str.splitlines() also breaks on form feeds and Unicode separators,
    # which would make our line numbers disagree with the user's editor.
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.strip()  # also drops the "\r" of CRLF line endings
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        name, colon, command = line.partition(":")
        name, command = name.strip(), command.strip()
        if not colon or not name or any(c.isspace() for c in name):
            raise ConfigError(f'{where}: expected "<name>: <command>", got "{excerpt(line)}"')
        if not is_valid_process_name(name):
            raise ConfigError(
                f'{where}: invalid process name "{excerpt(name)}": use only letters, digits, '
                f'"_" and "-" ({PROCESS_NAME_PATTERN})'
            )
        if not command:
            raise ConfigError(f'{where}: process "{name}" has no command')
        if "\0" in command:
            # exec cannot pass a NUL byte; say so here instead of failing at spawn time.
            raise ConfigError(f'{where}: the command of "{name}" contains a NUL character')
        if name in first_line:
            raise ConfigError(
                f'{where}: duplicate process "{name}" (first defined on line {first_line[name]})'
            )
        first_line[name] = number
        entries.append(ProcfileEntry(name=name, command=command, line=number))
    if not entries:
        raise ConfigError(f'{path}: no processes defined; add a line like "web: gunicorn app:app"')
    return Procfile(path=path, entries=tuple(entries))


def load_procfile(path: Path) -> Procfile:
    """Read and parse the Procfile at `path` (UTF-8, optional BOM, LF or CRLF)."""
    text = read_text(path, "a Procfile", utf8_hint="save the Procfile as UTF-8")
    if text is None:
        raise ConfigError(
            f"Procfile not found: {path.absolute()} (use -f/--procfile to name another)"
        )
    return parse_procfile(text, path)

"""Procfile text -> named commands, in the Heroku/foreman format; every error carries file:line.

A line is `name: command`, with whitespace around both trimmed. Blank lines and lines starting with
`#` are ignored. Anything else is an error rather than skipped: a silently dropped line is a
process that silently never runs.

Overlays (`-f Procfile -f Procfile.dev`): each later file is merged on top of the ones before it.
An entry of a name defined earlier replaces that entry where it stands in the order; an entry of
a new name comes after every earlier one, in its file's order; `name: ~` (YAML's null, as
honcho#256 proposed) removes the entry of that name. Every entry keeps the file and line it came
from, so each later message names the file the user has to edit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from procrun.errors import ConfigError
from procrun.project.textfile import no_such_file, read_text, similar_file
from procrun.quoting import did_you_mean, excerpt

PROCESS_NAME_PATTERN = "[A-Za-z0-9_-]+"
_PROCESS_NAME = re.compile(PROCESS_NAME_PATTERN)

RELEASE_PROCESS = "release"
"""The Heroku convention: a one-off command run before the processes start (migrations)."""

REMOVE = "~"
"""The command that removes an entry of an earlier Procfile: `redis: ~`."""

DEFAULT_PROCFILE = Path("Procfile")


@dataclass(frozen=True)
class ProcfileEntry:
    name: str
    command: str
    line: int
    """1-based line number in `path`, for messages."""
    path: Path
    """The file the entry came from, as the user gave it."""
    replaces: str | None = None
    """`Procfile:8`: the entry of an earlier file that this one replaced, if any."""

    @property
    def source(self) -> str:
        """`Procfile.dev:3`, the start of every message about this entry."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Removal:
    """`redis: ~` in an overlay: the entry at `removed` is gone from the merged Procfile."""

    name: str
    source: str
    removed: str


@dataclass(frozen=True)
class Procfile:
    path: Path
    """The first file, as the user gave it, so messages name the file the way they know it."""
    entries: tuple[ProcfileEntry, ...]
    overlays: tuple[Path, ...] = ()
    """The files merged on top of `path`, in order."""
    removals: tuple[Removal, ...] = ()

    def get(self, name: str) -> ProcfileEntry | None:
        return next((entry for entry in self.entries if entry.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.entries)

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.path, *self.overlays)


def is_valid_process_name(name: str) -> bool:
    return _PROCESS_NAME.fullmatch(name) is not None


def parse_procfile(text: str, path: Path, base: Procfile | None = None) -> Procfile:
    """Parse Procfile `text`, merged on top of `base` when it is an overlay; `path` only names
    the file in messages and in the result."""
    entries = list(base.entries) if base is not None else []
    removals = list(base.removals) if base is not None else []
    for entry in _parse_lines(text, path):
        index = next((i for i, old in enumerate(entries) if old.name == entry.name), None)
        if entry.command == REMOVE:
            if index is None:
                names = [old.name for old in entries]
                raise ConfigError(
                    f"{entry.source}: nothing to remove: no earlier Procfile defines "
                    f'"{entry.name}"{did_you_mean(entry.name, names)}'
                )
            removals.append(Removal(entry.name, entry.source, entries.pop(index).source))
        elif index is None:
            entries.append(entry)
        else:
            entries[index] = replace(entry, replaces=entries[index].source)
    if base is None:
        if not entries:
            raise ConfigError(
                f'{path}: no processes defined; add a line like "web: gunicorn app:app"'
            )
        return Procfile(path=path, entries=tuple(entries))
    if not entries:
        raise ConfigError(f'{path}: no processes left: its "<name>: ~" lines remove every entry')
    return Procfile(base.path, tuple(entries), (*base.overlays, path), tuple(removals))


def _parse_lines(text: str, path: Path) -> list[ProcfileEntry]:
    """The entries of one file, removals (`name: ~`) included, in order."""
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
        entries.append(ProcfileEntry(name=name, command=command, line=number, path=path))
    return entries


def load_procfile(path: Path, base: Procfile | None = None) -> Procfile:
    """Read and parse the Procfile at `path` (UTF-8, optional BOM, LF or CRLF), merged on top of
    `base` when it is an overlay."""
    text = read_text(path, "a Procfile", utf8_hint="save the Procfile as UTF-8")
    if text is None:
        if base is not None:
            raise no_such_file(path, "-f/--procfile")
        raise ConfigError(
            f"Procfile not found: {path.absolute()}{similar_file(path)} "
            "(use -f/--procfile to name another)"
        )
    return parse_procfile(text, path, base)


def load_procfiles(paths: Sequence[Path]) -> Procfile:
    """The first Procfile of `paths` (default `Procfile`) with each later one merged on top."""
    first, *overlays = paths or (DEFAULT_PROCFILE,)
    procfile = load_procfile(first)
    for path in overlays:
        procfile = load_procfile(path, procfile)
    return procfile

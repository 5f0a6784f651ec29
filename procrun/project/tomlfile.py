"""Reading a TOML file so that every later error can name a line.

tomllib returns plain dicts with no positions, so an error about a value would otherwise name only
the file. `key_lines` is a best-effort line scan, not a second TOML parser: it understands table
headers, dotted and quoted keys and multi-line strings; when it cannot place a key, `line_of`
falls back to the key's table, and callers to the file name alone.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from procrun.errors import ConfigError
from procrun.project.textfile import read_text
from procrun.quoting import excerpt

KeyPath = tuple[str, ...]

_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_KEY_PARTS = re.compile(_KEY_PART)
_TABLE_HEADER = re.compile(rf"\s*\[\[?\s*({_DOTTED_KEY})\s*\]\]?\s*(?:#.*)?")
_ASSIGNMENT = re.compile(rf"\s*({_DOTTED_KEY})\s*=")
_MULTILINE_QUOTES = ('"""', "'''")
_TOMLLIB_POSITION = re.compile(r"(.*) \(at (?:line (\d+), column \d+|end of document)\)", re.DOTALL)


@dataclass(frozen=True)
class TomlFile:
    path: Path
    """As the user or the lookup gave it, for messages."""
    data: Mapping[str, object]
    lines: Mapping[KeyPath, int]

    def line_of(self, key: KeyPath, root: KeyPath = ()) -> int | None:
        """The line of `key`, else of its nearest enclosing table down to `root`, else None.

        `root` stops the fallback from pointing at an unrelated line, e.g. at `[tool]` when the
        key lives in `[tool.procrun]`.
        """
        for end in range(len(key), len(root) - 1, -1):
            if (line := self.lines.get(key[:end])) is not None:
                return line
        return None


def read_toml(path: Path) -> TomlFile | None:
    """The parsed file, or None when it does not exist; any other problem is a ConfigError."""
    text = read_text(path, "a TOML file")
    if text is None:
        return None
    # Editors on Windows may add a BOM, which tomllib rejects as an invalid statement.
    text = text.removeprefix("\ufeff")
    return TomlFile(path, _parse(path, text), key_lines(text))


def _parse(path: Path, text: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # "Invalid value (at line 4, column 9)" -> "procrun.toml:4: Invalid value"
        match = _TOMLLIB_POSITION.fullmatch(str(exc))
        if match is None:
            raise ConfigError(f"{path}: {exc}") from None
        if match.group(2) is None:
            last_line = text.rstrip().count("\n") + 1
            raise ConfigError(f"{path}:{last_line}: {match.group(1)} (at end of file)") from None
        raise ConfigError(f"{path}:{match.group(2)}: {match.group(1)}") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit integer, or nesting too deep
        raise ConfigError(f"{path}: cannot read this TOML: {excerpt(str(exc))}") from None


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map each table path and full key path (e.g. `("processes", "web", "grace")`) to the
    1-based line where it first appears."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    open_quote: str | None = None  # the delimiter of the multi-line string we are inside
    for number, line in enumerate(text.split("\n"), start=1):
        if open_quote is not None:
            if line.count(open_quote) % 2 == 1:
                open_quote = None
            continue
        if header := _TABLE_HEADER.fullmatch(line):
            table = _split_key(header.group(1))
            # `[process.web]` also defines `process`: an error about it names this line.
            for end in range(1, len(table) + 1):
                lines.setdefault(table[:end], number)
        elif assignment := _ASSIGNMENT.match(line):
            key = table + _split_key(assignment.group(1))
            # A dotted key (`web.grace = 1`) also defines its intermediate tables on this line.
            for end in range(len(table) + 1, len(key) + 1):
                lines.setdefault(key[:end], number)
        open_quote = next((q for q in _MULTILINE_QUOTES if line.count(q) % 2 == 1), None)
    return lines


def _split_key(dotted: str) -> KeyPath:
    return tuple(_unquote(part) for part in _KEY_PARTS.findall(dotted))


def _unquote(part: str) -> str:
    if part.startswith('"'):
        try:
            # tomllib decodes the escapes, so "\u0041" finds the key tomllib calls "A".
            value = tomllib.loads(f"k = {part}")["k"]
        except tomllib.TOMLDecodeError:
            return part[1:-1]
        return value if isinstance(value, str) else part[1:-1]
    if part.startswith("'"):
        return part[1:-1]
    return part

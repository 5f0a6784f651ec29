"""Reading a supervisord.conf as supervisord reads it, keeping where each value came from.

supervisord reads its files with configparser's RawConfigParser: no interpolation, `;` and `#`
start a comment (after a value too, behind whitespace), a later duplicate wins, option names are
lower case, and an indented line continues the value above it. `[include] files =` of the main
file names globs, relative to that file's directory, each read in sorted order into the same
parser; supervisord follows no [include] of an included file. `%(here)s` is the directory of the
file a value is written in.

configparser keeps no positions, so a scan of each file's lines records the line of each section
and key (its last definition, the one that wins), for messages that name file and line.
"""

from __future__ import annotations

import configparser
import glob
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from procrun.errors import ConfigError
from procrun.importing.expansions import ENV_PREFIX, expand, literal_text
from procrun.project.textfile import read_text, similar_file
from procrun.quoting import excerpt

INCLUDE_SECTION = "include"
_SECTION_HEADER = re.compile(r"\[(?P<header>.+)\]")
_OPTION = re.compile(r"(?P<option>.*?)\s*[=:]")
_COMMENT_PREFIXES = (";", "#")


@dataclass(frozen=True)
class Value:
    text: str
    path: Path
    line: int

    @property
    def here(self) -> Path:
        """`%(here)s`: the directory of the file this value is written in."""
        return self.path.absolute().parent


@dataclass(frozen=True)
class Section:
    name: str
    """As in the file: `program:web`, `group:jobs`, `supervisord`."""
    path: Path
    line: int
    values: Mapping[str, Value]

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def what(self, key: str) -> str:
        """`supervisord.conf:12: [program:web] command`: the start of a message about `key`."""
        value = self.values.get(key)
        where = f"{value.path}:{value.line}" if value is not None else self.where
        return f"{where}: [{self.name}] {key}"


@dataclass(frozen=True)
class SupervisordConf:
    path: Path
    sections: tuple[Section, ...]
    """In the order supervisord sees them: the main file's, then each included file's new ones."""
    included: tuple[Path, ...]
    notes: tuple[str, ...]
    """What the include step could not follow, one line each."""


def read_conf(path: Path, environ: Mapping[str, str]) -> SupervisordConf:
    """The sections of the supervisord.conf at `path` and of the files its [include] names;
    `environ` resolves `%(ENV_X)s` in the include globs, as supervisord does when it starts."""
    parser = configparser.RawConfigParser(inline_comment_prefixes=_COMMENT_PREFIXES, strict=False)
    positions: dict[tuple[str, str | None], tuple[Path, int]] = {}
    _read(parser, path, positions, main=True)
    included: list[Path] = []
    notes: list[str] = []
    if parser.has_section(INCLUDE_SECTION):
        header = positions.get((INCLUDE_SECTION, None), (path, 0))
        files = positions.get((INCLUDE_SECTION, "files"))
        if files is None or not parser.has_option(INCLUDE_SECTION, "files"):
            raise ConfigError(
                f"{header[0]}:{header[1]}: [include] has no files=; "
                "add files = conf.d/*.conf, or remove the section"
            )
        value = Value(parser.get(INCLUDE_SECTION, "files"), *files)
        for pattern in _include_patterns(value, environ):
            matches = sorted(glob.glob(os.path.join(path.parent, pattern)))
            if not matches:
                notes.append(f"{value.path}:{value.line}: [include] {pattern}: no file matches")
            for match in matches:
                included.append(Path(match))
                if _read(parser, Path(match), positions, main=False):
                    notes.append(
                        f"{match}: its [include] is not followed (supervisord reads [include] "
                        "of the main file only): name those files in the main file's [include]"
                    )
    return SupervisordConf(
        path=path,
        sections=tuple(_sections(parser, positions)),
        included=tuple(included),
        notes=tuple(notes),
    )


def _read(
    parser: configparser.RawConfigParser,
    path: Path,
    positions: dict[tuple[str, str | None], tuple[Path, int]],
    *,
    main: bool,
) -> bool:
    """Read one file into `parser`; True when it has an [include] section of its own."""
    text = read_text(path, "a supervisord.conf")
    if text is None:
        raise ConfigError(f"no such file: {path.absolute()}{similar_file(path)}")
    text = text.removeprefix("\ufeff")
    try:
        parser.read_string(text, source=str(path))
    except configparser.MissingSectionHeaderError as error:
        raise ConfigError(
            f'{path}:{error.lineno}: expected a section header like "[program:web]", got '
            f'"{excerpt(error.line.strip())}"; is this a supervisord.conf?'
        ) from None
    except configparser.ParsingError as error:
        line, content = error.errors[0]
        text_of_line = text.split("\n")[line - 1] if 0 < line <= text.count("\n") + 1 else content
        raise ConfigError(
            f'{path}:{line}: expected "key = value" or "[section]", got '
            f'"{excerpt(text_of_line.strip())}"'
        ) from None
    found = _positions(text, path)
    for key, where in found.items():
        if key[1] is not None or key not in positions:  # a header: where it first appears
            positions[key] = where
    return not main and (INCLUDE_SECTION, None) in found


def _include_patterns(value: Value, environ: Mapping[str, str]) -> list[str]:
    names: dict[str, object] = {"here": str(value.here), "host_node_name": platform.node()}
    names.update({f"{ENV_PREFIX}{key}": item for key, item in environ.items()})
    what = f"{value.path}:{value.line}: [include] files"
    text = literal_text(expand(value.text, names, what, runtime_env=False)) or ""
    return text.split()


def _positions(text: str, path: Path) -> dict[tuple[str, str | None], tuple[Path, int]]:
    """(section, key) -> (file, line), and (section, None) for each header; later lines win, as
    configparser lets a later duplicate win. Only placement: configparser judged the syntax."""
    found: dict[tuple[str, str | None], tuple[Path, int]] = {}
    section: str | None = None
    option_indent: int | None = None  # a line indented deeper than this continues the value
    for number, line in enumerate(text.split("\n"), start=1):
        content = _without_comment(line).strip()
        if not content:
            continue
        indent = len(line) - len(line.lstrip())
        if option_indent is not None and indent > option_indent:
            continue
        option_indent = None
        if header := _SECTION_HEADER.match(content):
            section = header.group("header")
            found.setdefault((section, None), (path, number))
        elif section is not None and (option := _OPTION.match(content)):
            found[(section, option.group("option").strip().lower())] = (path, number)
            option_indent = indent
    return found


def _without_comment(line: str) -> str:
    if line.strip().startswith(_COMMENT_PREFIXES):
        return ""
    cut = len(line)
    for prefix in _COMMENT_PREFIXES:
        index = line.find(prefix)
        while index != -1:
            if index == 0 or line[index - 1].isspace():
                cut = min(cut, index)
                break
            index = line.find(prefix, index + 1)
    return line[:cut]


def _sections(
    parser: configparser.RawConfigParser,
    positions: Mapping[tuple[str, str | None], tuple[Path, int]],
) -> list[Section]:
    sections = []
    for name in parser.sections():
        path, line = positions.get((name, None), (Path("?"), 0))
        values = {}
        for key, text in parser.items(name):
            # A key from [DEFAULT] has no line of its own in this section: the section's.
            where = positions.get((name, key), positions.get(("DEFAULT", key), (path, line)))
            values[key] = Value(text, *where)
        sections.append(Section(name, path, line, values))
    return sections

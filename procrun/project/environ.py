""".env files -> environment variables, and how they combine with the real environment.

python-dotenv parses the files; procrun adds what it leaves out: a bad line is an error with
file:line instead of a logged warning, and `${VAR}` expands with the same precedence the children
will see (the real environment beats .env files; later files beat earlier ones).
"""

from __future__ import annotations

import io
import os
import re
from collections import ChainMap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from procrun.errors import ConfigError
from procrun.project.textfile import read_text
from procrun.quoting import excerpt

if TYPE_CHECKING:
    from dotenv.parser import Binding

_NEWLINE = re.compile(r"\r\n|\n|\r")


def load_env_files(
    paths: Sequence[Path], required: bool, *, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables the .env files at `paths` define; later files override earlier ones.

    `required=False` is for the implicit ./.env: a missing file is skipped. `required=True` is for
    files the user named: a missing one is an error. A bare `KEY` line (no `=`) defines nothing.
    `${VAR}` and `${VAR:-default}` expand from `environ` (default: os.environ) first, then from
    what the files defined so far, matching merge_environment's precedence.
    """
    values: dict[str, str] = {}
    known = ChainMap[str, str](dict(os.environ if environ is None else environ), values)
    for path in paths:
        text = _read(path, required)
        if text is None:
            continue
        # Imported here: python-dotenv pulls in tempfile, shutil and the compression modules,
        # memory the supervisor would carry for its whole life in a container with no .env.
        from dotenv.variables import parse_variables

        for key, raw_value in _assignments(text, path):
            values[key] = "".join(atom.resolve(known) for atom in parse_variables(raw_value))
    return values


def merge_environment(real: Mapping[str, str], dotenv: Mapping[str, str]) -> dict[str, str]:
    """The real environment wins: a platform's variables must not be overridden by a .env file
    that was baked into an image."""
    return {**dotenv, **real}


def _read(path: Path, required: bool) -> str | None:
    text = read_text(path, "an env file")
    if text is None and required:
        raise ConfigError(f"env file not found: {path.absolute()}")
    return text


def _assignments(text: str, path: Path) -> Iterator[tuple[str, str]]:
    """(key, unexpanded value) for each `KEY=VALUE`; a line python-dotenv cannot parse is an
    error here, because skipping it would start the processes without that variable."""
    from dotenv.parser import parse_stream  # lazily, as in load_env_files

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line, content = _first_content_line(binding)
            raise ConfigError(
                f"{path}:{line}: cannot parse '{excerpt(content)}': expected KEY=VALUE"
            )
        if binding.key is None or binding.value is None:
            continue
        if "=" in binding.key or "\0" in binding.key:
            # Only possible with a quoted key ('A=B'=1); no environment can hold such a name.
            line, _ = _first_content_line(binding)
            raise ConfigError(
                f"{path}:{line}: invalid variable name '{excerpt(binding.key)}': it must not "
                "contain '=' or NUL"
            )
        if "\0" in binding.value:
            line, _ = _first_content_line(binding)
            raise ConfigError(f"{path}:{line}: the value of {binding.key} contains a NUL character")
        yield binding.key, binding.value


def _first_content_line(binding: Binding) -> tuple[int, str]:
    """The line number and text where the binding really starts: python-dotenv's own line is
    that of any blank lines before it."""
    text = binding.original.string
    body = text.lstrip()
    line = binding.original.line + len(_NEWLINE.findall(text[: len(text) - len(body)]))
    return line, _NEWLINE.split(body, maxsplit=1)[0].rstrip()


def own_virtualenv_bin(path: str | None, prefix: str, base_prefix: str) -> Path | None:
    """The bin directory of the virtualenv procrun runs from (`venv/bin/procrun start`), when it
    is not on `path`: the children need it first, or `gunicorn` and a release's `python manage.py`
    are not the project's. None outside a virtualenv or when it is on PATH already."""
    if prefix == base_prefix:
        return None
    bin_dir = Path(prefix) / "bin"
    entries = [Path(entry) for entry in (path or "").split(os.pathsep) if entry]
    return None if bin_dir in entries else bin_dir

"""An import as files: the Procfile, procrun.toml (each setting with a comment naming the
supervisord key it comes from) and, when there are secrets, .env (mode 0600).

Nothing is written when any of them exists, unless forced: a Procfile or .env someone already
has must not be lost to an import. The files are checked by procrun's own parsers in the tests.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from procrun.errors import UsageError
from procrun.importing.outcome import Setting, TomlValue
from procrun.importing.translate import Imported
from procrun.project.config import CONFIG_FILE_NAME
from procrun.project.procfile import DEFAULT_PROCFILE

ENV_FILE_NAME = ".env"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class OutputFile:
    name: str
    text: str
    private: bool = False
    """Readable by its owner only (.env holds secrets)."""


def render(imported: Imported) -> list[OutputFile]:
    source = imported.source.path
    files = [
        OutputFile(str(DEFAULT_PROCFILE), _procfile(imported, source.name)),
        OutputFile(CONFIG_FILE_NAME, _toml(imported, source.name)),
    ]
    if imported.secrets:
        files.append(OutputFile(ENV_FILE_NAME, _dotenv(imported.secrets, source.name), True))
    return files


def write(files: Sequence[OutputFile], directory: Path, *, force: bool) -> list[Path]:
    """Each file into `directory` (created if missing); the paths written."""
    targets = [directory / file.name for file in files]
    if not force:
        for path in targets:
            if path.exists():
                raise UsageError(
                    f"{path} exists: give --force to overwrite it, or -o another directory"
                )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for file, path in zip(files, targets, strict=True):
            mode = 0o600 if file.private else 0o644
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                if file.private:
                    os.fchmod(stream.fileno(), mode)  # an existing file keeps its old mode
                stream.write(file.text)
    except OSError as error:
        raise UsageError(f"-o/--output: {error.filename}: {error.strerror}") from None
    return targets


def _procfile(imported: Imported, source: str) -> str:
    lines = [
        f"# Imported from {source} by `procrun import supervisord`, in supervisord's start",
        "# order. procrun.toml has each program's settings.",
    ]
    for entry in imported.entries:
        lines += ["", f"# {entry.origin}", f"{entry.name}: {entry.command}"]
    return "\n".join(lines) + "\n"


def _toml(imported: Imported, source: str) -> str:
    lines = [
        f"# Imported from {source} by `procrun import supervisord`: each setting names the key",
        "# it comes from. Set shutdown_timeout to your platform's SIGKILL deadline minus a",
        '# margin (shutdown_timeout = "25s" for a 30 s one); `procrun check` shows the result.',
    ]
    if imported.defaults:
        lines += _table("defaults", imported.defaults, header=None)
    for entry in imported.entries:
        lines += _table(f"processes.{entry.name}", entry.settings, header=entry.origin)
    return "\n".join(lines) + "\n"


def _table(path: str, settings: Sequence[Setting], header: str | None) -> list[str]:
    """`[path]` with its plain keys, then each `env` as a sub-table, as TOML requires. A table
    with a `header` comment is written even when it has no plain key, to say where it is from."""
    plain = [setting for setting in settings if not isinstance(setting.value, Mapping)]
    lines = []
    if plain or header is not None:
        lines += ["", f"[{path}]" + (f"  # {header}" if header is not None else "")]
    lines += [f"{s.key} = {_value(s.value)}  # {_comment(s.comment)}" for s in plain]
    for setting in settings:
        if isinstance(setting.value, Mapping):
            lines += ["", f"[{path}.{setting.key}]  # {_comment(setting.comment)}"]
            lines += [f"{_key(key)} = {_value(value)}" for key, value in setting.value.items()]
    return lines


def _value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # A JSON string is a TOML basic string: the same escapes, \uXXXX for control characters.
    return json.dumps(value, ensure_ascii=False)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _comment(text: str) -> str:
    return " ".join(text.split())


def _dotenv(secrets: Mapping[str, str], source: str) -> str:
    lines = [
        f"# Secrets from the environment= lines of {source} (`procrun import supervisord`).",
        "# Keep this file out of git and of the image; the platform's environment beats it.",
    ]
    for name, value in secrets.items():
        # Single quotes: python-dotenv unescapes only \\ and \' inside them.
        quoted = value.replace("\\", "\\\\").replace("'", "\\'")
        lines.append(f"{name}='{quoted}'")
    return "\n".join(lines) + "\n"

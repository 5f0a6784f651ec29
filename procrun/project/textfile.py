"""Reading a project file as UTF-8 text, with one set of errors for every kind of file.

The Procfile, .env files and procrun.toml are all read here, so each problem is reported the same
way: the file (and, for bytes that are not UTF-8, the line) and what to do about it.
"""

from __future__ import annotations

from pathlib import Path

from procrun.errors import ConfigError
from procrun.quoting import closest, one_line

UTF8_HINT = "save it as UTF-8"


def read_text(path: Path, kind: str, *, utf8_hint: str = UTF8_HINT) -> str | None:
    """The text of `path`, or None when there is no such file; `kind` names what it should be
    (`a Procfile`) in the error for a directory. Any other problem is a ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not {kind}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); {utf8_hint}"
        ) from None


def similar_file(path: Path) -> str:
    """`; did you mean "Procfile.dev"?` when a file beside `path` has a name close to its own."""
    try:
        names = [entry.name for entry in path.parent.iterdir() if entry.is_file()]
    except OSError:
        return ""
    close = closest(path.name, names)
    return f'; did you mean "{one_line(str(path.parent / close))}"?' if close else ""


def no_such_file(path: Path, option: str) -> ConfigError:
    """The error for a file named by `option` (`-f/--procfile`) that does not exist."""
    return ConfigError(f"{option}: no such file: {path.absolute()}{similar_file(path)}")

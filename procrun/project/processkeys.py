"""The keys of a process table in procrun.toml (`[defaults]`, `[processes.<name>]`): each key's
ProcessSettings field and the converter that checks and turns its value, with the message a bad
value gets (it starts with `procrun.toml:9: grace`, as the caller names it)."""

from __future__ import annotations

import enum
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from procrun.errors import ConfigError
from procrun.project.values import parse_duration, parse_signal, parse_size
from procrun.quoting import excerpt
from procrun.settings import RestartPolicy

_E = TypeVar("_E", bound=enum.StrEnum)


def show_value(value: object) -> str:
    """A TOML value roughly as the user wrote it."""
    if isinstance(value, str):
        return f'"{excerpt(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return excerpt(str(value))


def choice(kind: type[_E], value: object, what: str) -> _E:
    choices = [member.value for member in kind]
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{what} must be one of {', '.join(choices)}, got {show_value(value)}")
    return kind(value)


# Converters: (value, "procrun.toml:9: grace", directory of the file) -> ProcessSettings value.
Convert = Callable[[object, str, Path], object]


def _duration(value: object, what: str, base: Path) -> float:
    return parse_duration(value, what)


def _signal(value: object, what: str, base: Path) -> signal.Signals:
    return parse_signal(value, what)


def _second_signal(value: object, what: str, base: Path) -> signal.Signals | None:
    if value is False:
        return None
    if value is True:
        raise ConfigError(f'{what} must be a signal name like "QUIT", or false for none')
    return parse_signal(value, what)


def _restart(value: object, what: str, base: Path) -> RestartPolicy:
    return choice(RestartPolicy, value, what)


def _whole_number(value: object, what: str, base: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{what} must be a whole number, 0 or more, got {show_value(value)}")
    return value


def _boolean(value: object, what: str, base: Path) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be true or false, got {show_value(value)}")
    return value


def _patterns(value: object, what: str, base: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(
            f'{what} must be a list of file patterns like ["app/**/*.py", "templates/"], '
            f"got {show_value(value)}"
        )
    if any("\0" in item for item in value):
        raise ConfigError(f"{what} contains a NUL character")
    return tuple(value)


def _size(value: object, what: str, base: Path) -> int:
    return parse_size(value, what)


def _directory(value: object, what: str, base: Path) -> Path:
    if not isinstance(value, str) or not value or "\0" in value:
        raise ConfigError(f"{what} must be a directory path, got {show_value(value)}")
    path = (base / value).absolute()
    # Checked now: at spawn time a missing cwd looks just like a missing command.
    if not path.is_dir():
        raise ConfigError(f'{what} "{excerpt(value)}" is not a directory ({path})')
    return path


def _environment(value: object, what: str, base: Path) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(
            f'{what} must be a table like {{ KEY = "value" }}, got {show_value(value)}'
        )
    for key, item in value.items():
        if not key or "=" in key or "\0" in key:
            raise ConfigError(f'{what}: invalid variable name "{excerpt(key)}"')
        if not isinstance(item, str):
            number = isinstance(item, int | float) and not isinstance(item, bool)
            hint = f' (quote it: "{item}")' if number else ""
            raise ConfigError(
                f"{what}.{excerpt(key)} must be a string, got {show_value(item)}{hint}"
            )
        if "\0" in item:
            raise ConfigError(f"{what}.{excerpt(key)} contains a NUL character")
    return MappingProxyType(dict(value))


# procrun.toml key -> (ProcessSettings field, converter).
PROCESS_KEYS: dict[str, tuple[str, Convert]] = {
    "backoff": ("backoff_initial_seconds", _duration),
    "backoff_max": ("backoff_max_seconds", _duration),
    "count": ("count", _whole_number),
    "cwd": ("cwd", _directory),
    "env": ("env", _environment),
    "grace": ("grace_seconds", _duration),
    "max_memory": ("max_memory_bytes", _size),
    "max_memory_for": ("max_memory_for_seconds", _duration),
    "max_restarts": ("max_restarts", _whole_number),
    "min_uptime": ("min_uptime_seconds", _duration),
    "oneshot": ("oneshot", _boolean),
    "restart": ("restart", _restart),
    "restart_window": ("restart_window_seconds", _duration),
    "restart_with": ("restart_with", _boolean),
    "second_signal": ("second_signal", _second_signal),
    "second_signal_margin": ("second_signal_margin_seconds", _duration),
    "stop_signal": ("stop_signal", _signal),
    "watch": ("watch", _patterns),
    "watch_ignore": ("watch_ignore", _patterns),
}

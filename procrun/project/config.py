"""procrun.toml, or [tool.procrun] in pyproject.toml -> Config -> the settings of each process type.

Which file: the one named explicitly; else `procrun.toml` in the project directory; else the
`[tool.procrun]` table of its `pyproject.toml`; else built-in defaults. When procrun.toml exists it
is the only file used, even if pyproject.toml has a [tool.procrun] table too (Config.shadowed then
names pyproject.toml so the CLI can warn that it is ignored).

Everything is validated while loading, with file:line in each message, so settings_for cannot fail.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from procrun.errors import ConfigError
from procrun.project.celery_worker import is_celery_worker
from procrun.project.procfile import PROCESS_NAME_PATTERN, Procfile, is_valid_process_name
from procrun.project.tomlfile import KeyPath, TomlFile, read_toml
from procrun.project.values import parse_duration, parse_signal, parse_size
from procrun.quoting import excerpt
from procrun.settings import (
    CELERY_WORKER_GRACE_SECONDS,
    GiveUpPolicy,
    ProcessSettings,
    RestartPolicy,
)

CONFIG_FILE_NAME = "procrun.toml"
PYPROJECT_FILE_NAME = "pyproject.toml"
_PYPROJECT_TABLE: KeyPath = ("tool", "procrun")

Overrides = Mapping[str, object]
"""Validated ProcessSettings field values from one table, e.g. {"grace_seconds": 20.0}."""


def _no_overrides() -> Overrides:
    return MappingProxyType({})


def _no_processes() -> Mapping[str, Overrides]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Config:
    source: Path | None = None
    """The file the settings came from; None when procrun runs on defaults."""
    shutdown_timeout_seconds: float | None = None
    platform_deadline_seconds: float | None = None
    on_give_up: GiveUpPolicy = GiveUpPolicy.SHUTDOWN
    defaults: Overrides = field(default_factory=_no_overrides)
    processes: Mapping[str, Overrides] = field(default_factory=_no_processes)
    shadowed: Path | None = None
    """A pyproject.toml whose [tool.procrun] table is ignored because procrun.toml exists."""


def load_config(directory: Path, explicit: Path | None = None) -> Config:
    """The Config for the project in `directory`, or from `explicit` (a missing one is an error;
    one named pyproject.toml is read for its [tool.procrun] table)."""
    if explicit is not None:
        file = read_toml(explicit)
        if file is None:
            raise ConfigError(f"config file not found: {explicit.absolute()}")
        root = _PYPROJECT_TABLE if explicit.name == PYPROJECT_FILE_NAME else ()
        config = _config(file, root)
        if config is None:
            raise ConfigError(f"{explicit}: no [tool.procrun] table")
        return config
    file = read_toml(directory / CONFIG_FILE_NAME)
    if file is not None:
        config = _Reader(file, ()).config(file.data)
        return dataclasses.replace(config, shadowed=_shadowed(directory / PYPROJECT_FILE_NAME))
    pyproject = directory / PYPROJECT_FILE_NAME
    # A pyproject.toml that never mentions procrun is someone else's file: do not fail on it.
    if not _mentions_procrun(pyproject):
        return Config()
    file = read_toml(pyproject)
    config = _config(file, _PYPROJECT_TABLE) if file is not None else None
    return config or Config()


def settings_for(name: str, command: str, config: Config) -> ProcessSettings:
    """Built-in defaults, then [defaults], then the Celery rule, then [processes.<name>].

    The Celery rule comes after [defaults] so a blanket `grace = "20s"` meant for the web server
    does not silently cut a worker's warm shutdown; [processes.worker] still overrides it.
    `env` tables merge key by key ([processes.<name>] wins); every other key replaces.
    """
    settings = _apply(ProcessSettings(), config.defaults)
    if is_celery_worker(name, command):
        # Long tasks get time to finish; QUIT before the deadline requeues unacknowledged
        # messages at once instead of after the broker's visibility timeout.
        settings = dataclasses.replace(
            settings, grace_seconds=CELERY_WORKER_GRACE_SECONDS, second_signal=signal.SIGQUIT
        )
    return _apply(settings, config.processes.get(name, {}))


def _apply(settings: ProcessSettings, overrides: Overrides) -> ProcessSettings:
    # Any: the values were type-checked per field when the file was loaded.
    changes: dict[str, Any] = dict(overrides)
    if "env" in changes:
        changes["env"] = MappingProxyType({**settings.env, **changes["env"]})
    return dataclasses.replace(settings, **changes)


def unknown_process_names(config: Config, procfile: Procfile) -> list[str]:
    """[processes.<name>] tables that name no Procfile entry: a warning, not an error, since one
    procrun.toml may serve both Procfile and Procfile.dev."""
    return [name for name in config.processes if procfile.get(name) is None]


def _mentions_procrun(path: Path) -> bool:
    try:
        return b"procrun" in path.read_bytes()
    except OSError:
        return False  # read_toml reports unreadable files; a missing one is simply absent


def _shadowed(pyproject: Path) -> Path | None:
    if not _mentions_procrun(pyproject):
        return None
    try:
        file = read_toml(pyproject)
    except ConfigError:  # not ours to report: procrun.toml is the file in use
        return None
    return pyproject if file is not None and _table_at(file.data, _PYPROJECT_TABLE) else None


def _table_at(data: Mapping[str, object], root: KeyPath) -> object:
    table: object = data
    for part in root:
        table = table.get(part) if isinstance(table, dict) else None
    return table


def _config(file: TomlFile, root: KeyPath) -> Config | None:
    """The Config in table `root` of `file`; None when there is no such table."""
    table = _table_at(file.data, root)
    if table is None:
        return None
    return _Reader(file, root).config(table)


# --- validation ----------------------------------------------------------------------------

_TOP_LEVEL_KEYS = ("defaults", "on_give_up", "platform_deadline", "processes", "shutdown_timeout")
_E = TypeVar("_E", bound=enum.StrEnum)


def _label(path: KeyPath) -> str:
    """`[processes.web]`, quoting parts as TOML would (bare keys allow process-name characters)."""
    parts = (p if is_valid_process_name(p) else json.dumps(p, ensure_ascii=False) for p in path)
    return f"[{'.'.join(parts)}]"


def _show(value: object) -> str:
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


def _choice(kind: type[_E], value: object, what: str) -> _E:
    choices = [member.value for member in kind]
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{what} must be one of {', '.join(choices)}, got {_show(value)}")
    return kind(value)


@dataclass(frozen=True)
class _Reader:
    """Validates one file's settings table; knows how to name a key's position in messages."""

    file: TomlFile
    root: KeyPath

    def where(self, key: KeyPath) -> str:
        line = self.file.line_of(self.root + key, self.root)
        return f"{self.file.path}:{line}" if line is not None else str(self.file.path)

    def what(self, key: KeyPath) -> str:
        """`procrun.toml:9: grace`, or `procrun.toml: processes.web.grace` with no line."""
        if self.file.line_of(self.root + key, self.root) is not None:
            return f"{self.where(key)}: {key[-1]}"
        return f"{self.file.path}: {'.'.join(self.root + key)}"

    def config(self, value: object) -> Config:
        table = self.table(value, ())
        self.check_keys(table, (), _TOP_LEVEL_KEYS)
        timeout = None
        if "shutdown_timeout" in table:
            timeout = parse_duration(table["shutdown_timeout"], self.what(("shutdown_timeout",)))
        deadline = None
        if "platform_deadline" in table:
            deadline = parse_duration(table["platform_deadline"], self.what(("platform_deadline",)))
        on_give_up = GiveUpPolicy.SHUTDOWN
        if "on_give_up" in table:
            on_give_up = _choice(GiveUpPolicy, table["on_give_up"], self.what(("on_give_up",)))
        processes = self.table(table.get("processes", {}), ("processes",))
        for name in processes:
            if not is_valid_process_name(name):
                raise ConfigError(
                    f'{self.where(("processes", name))}: invalid process name "{excerpt(name)}": '
                    f'use only letters, digits, "_" and "-" ({PROCESS_NAME_PATTERN})'
                )
        return Config(
            source=self.file.path,
            shutdown_timeout_seconds=timeout,
            platform_deadline_seconds=deadline,
            on_give_up=on_give_up,
            defaults=self.overrides(table.get("defaults", {}), ("defaults",)),
            processes=MappingProxyType(
                {
                    name: self.overrides(item, ("processes", name))
                    for name, item in processes.items()
                }
            ),
        )

    def table(self, value: object, key: KeyPath) -> dict[str, object]:
        if isinstance(value, dict):
            return value
        if key:
            raise ConfigError(f"{self.what(key)} must be a table, got {_show(value)}")
        # Only [tool.procrun] itself can be something else: a TOML document is always a table.
        raise ConfigError(
            f"{self.where(key)}: {_label(self.root)} must be a table, got {_show(value)}"
        )

    def check_keys(self, table: Mapping[str, object], key: KeyPath, valid: tuple[str, ...]) -> None:
        for name in table:
            if name not in valid:
                table_path = self.root + key
                place = f"in {_label(table_path)}" if table_path else "at the top level"
                raise ConfigError(
                    f'{self.where((*key, name))}: unknown key "{excerpt(name)}" {place}; '
                    f"valid keys: {', '.join(valid)}"
                )

    def overrides(self, value: object, key: KeyPath) -> Overrides:
        table = self.table(value, key)
        self.check_keys(table, key, tuple(_PROCESS_KEYS))
        base = self.file.path.parent
        return MappingProxyType(
            {
                _PROCESS_KEYS[name][0]: _PROCESS_KEYS[name][1](item, self.what((*key, name)), base)
                for name, item in table.items()
            }
        )


# Converters: (value, "procrun.toml:9: grace", directory of the file) -> ProcessSettings value.
_Convert = Callable[[object, str, Path], object]


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
    return _choice(RestartPolicy, value, what)


def _whole_number(value: object, what: str, base: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{what} must be a whole number, 0 or more, got {_show(value)}")
    return value


def _boolean(value: object, what: str, base: Path) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be true or false, got {_show(value)}")
    return value


def _size(value: object, what: str, base: Path) -> int:
    return parse_size(value, what)


def _directory(value: object, what: str, base: Path) -> Path:
    if not isinstance(value, str) or not value or "\0" in value:
        raise ConfigError(f"{what} must be a directory path, got {_show(value)}")
    path = (base / value).absolute()
    # Checked now: at spawn time a missing cwd looks just like a missing command.
    if not path.is_dir():
        raise ConfigError(f'{what} "{excerpt(value)}" is not a directory ({path})')
    return path


def _environment(value: object, what: str, base: Path) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f'{what} must be a table like {{ KEY = "value" }}, got {_show(value)}')
    for key, item in value.items():
        if not key or "=" in key or "\0" in key:
            raise ConfigError(f'{what}: invalid variable name "{excerpt(key)}"')
        if not isinstance(item, str):
            number = isinstance(item, int | float) and not isinstance(item, bool)
            hint = f' (quote it: "{item}")' if number else ""
            raise ConfigError(f"{what}.{excerpt(key)} must be a string, got {_show(item)}{hint}")
        if "\0" in item:
            raise ConfigError(f"{what}.{excerpt(key)} contains a NUL character")
    return MappingProxyType(dict(value))


# procrun.toml key -> (ProcessSettings field, converter).
_PROCESS_KEYS: dict[str, tuple[str, _Convert]] = {
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
    "second_signal": ("second_signal", _second_signal),
    "second_signal_margin": ("second_signal_margin_seconds", _duration),
    "stop_signal": ("stop_signal", _signal),
}

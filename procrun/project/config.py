"""procrun.toml, or [tool.procrun] in pyproject.toml -> Config -> the settings of each process type.

Which file: the one named explicitly; else `procrun.toml` in the project directory; else the
`[tool.procrun]` table of its `pyproject.toml`; else built-in defaults. When procrun.toml exists it
is the only file used, even if pyproject.toml has a [tool.procrun] table too (Config.shadowed then
names pyproject.toml so the CLI can warn that it is ignored).

Everything is validated while loading, with file:line in each message, so settings_for cannot fail;
only depends_on needs the Procfile: it is checked when the formation is built (dependencies.py).
"""

from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from procrun.errors import ConfigError
from procrun.project.celery_worker import is_celery_worker
from procrun.project.healthkeys import HEALTH_KEYS, DeclaredDependencies
from procrun.project.processkeys import PROCESS_KEYS, choice, show_value
from procrun.project.procfile import (
    PROCESS_NAME_PATTERN,
    RELEASE_PROCESS,
    Procfile,
    is_valid_process_name,
)
from procrun.project.stackdefaults import stack_default
from procrun.project.tomlfile import KeyPath, TomlFile, read_toml
from procrun.project.values import parse_duration
from procrun.quoting import did_you_mean, excerpt
from procrun.settings import (
    CELERY_WORKER_GRACE_SECONDS,
    DEFAULT_FORCE_KILL_SECONDS,
    GiveUpPolicy,
    ProcessSettings,
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
    force_kill_after_seconds: float = DEFAULT_FORCE_KILL_SECONDS
    """A forced stop (second Ctrl-C): from the last signal it sends now to the SIGKILL."""
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
    """Built-in defaults, then [defaults], then the Celery rule and the stack's readiness
    default, then [processes.<name>].

    The Celery rule comes after [defaults] so a blanket `grace = "20s"` meant for the web server
    does not silently cut a worker's warm shutdown; [processes.worker] still overrides it. The
    readiness default is a guess from the command: any `ready` in the file beats it.
    `env` tables merge key by key ([processes.<name>] wins); every other key replaces.
    """
    settings = _apply(ProcessSettings(), config.defaults)
    if is_celery_worker(name, command):
        # Long tasks get time to finish; QUIT before the deadline requeues unacknowledged
        # messages at once instead of after the broker's visibility timeout.
        settings = dataclasses.replace(
            settings, grace_seconds=CELERY_WORKER_GRACE_SECONDS, second_signal=signal.SIGQUIT
        )
    if not ready_is_configured(name, config):
        settings = dataclasses.replace(settings, ready=stack_default(name, command)[0])
    overrides = dict(config.processes.get(name, {}))
    declared = overrides.pop("depends_on", None)
    if isinstance(declared, DeclaredDependencies):
        overrides["depends_on"] = declared.conditions(lambda wanted: is_oneshot(wanted, config))
    return _apply(settings, overrides)


def ready_is_configured(name: str, config: Config) -> bool:
    """Whether procrun.toml sets `ready` for this type, so that no stack default applies."""
    return "ready" in config.defaults or "ready" in config.processes.get(name, {})


def is_oneshot(name: str, config: Config) -> bool:
    """Whether the type runs once: the release, or `oneshot = true`. The file alone decides (no
    rule from the command sets it), so a dependency can be judged without the Procfile."""
    if name == RELEASE_PROCESS:
        return True
    value = config.processes.get(name, {}).get("oneshot", config.defaults.get("oneshot", False))
    return value is True


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

_TOP_LEVEL_KEYS = (
    "defaults",
    "force_kill_after",
    "on_give_up",
    "platform_deadline",
    "processes",
    "shutdown_timeout",
)


def _label(path: KeyPath) -> str:
    """`[processes.web]`, quoting parts as TOML would (bare keys allow process-name characters)."""
    parts = (p if is_valid_process_name(p) else json.dumps(p, ensure_ascii=False) for p in path)
    return f"[{'.'.join(parts)}]"


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
        force_kill = DEFAULT_FORCE_KILL_SECONDS
        if "force_kill_after" in table:
            force_kill = parse_duration(table["force_kill_after"], self.what(("force_kill_after",)))
        on_give_up = GiveUpPolicy.SHUTDOWN
        if "on_give_up" in table:
            on_give_up = choice(GiveUpPolicy, table["on_give_up"], self.what(("on_give_up",)))
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
            force_kill_after_seconds=force_kill,
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
            raise ConfigError(f"{self.what(key)} must be a table, got {show_value(value)}")
        # Only [tool.procrun] itself can be something else: a TOML document is always a table.
        raise ConfigError(
            f"{self.where(key)}: {_label(self.root)} must be a table, got {show_value(value)}"
        )

    def check_keys(self, table: Mapping[str, object], key: KeyPath, valid: tuple[str, ...]) -> None:
        for name in table:
            if name not in valid:
                table_path = self.root + key
                place = f"in {_label(table_path)}" if table_path else "at the top level"
                raise ConfigError(
                    f'{self.where((*key, name))}: unknown key "{excerpt(name)}" {place}'
                    f"{did_you_mean(name, valid)}; valid keys: {', '.join(valid)}"
                )

    def overrides(self, value: object, key: KeyPath) -> Overrides:
        table = self.table(value, key)
        valid = tuple(_KEYS)
        if key == ("defaults",):
            # Every process, the dependency included, would depend on it.
            if "depends_on" in table:
                raise ConfigError(
                    f"{self.what((*key, 'depends_on'))} belongs in [processes.<name>], "
                    "not [defaults]"
                )
            valid = tuple(name for name in valid if name != "depends_on")
        self.check_keys(table, key, valid)
        base = self.file.path.parent
        return MappingProxyType(
            {
                _KEYS[name][0]: _KEYS[name][1](item, self.what((*key, name)), base)
                for name, item in table.items()
            }
        )


_KEYS = dict(sorted({**PROCESS_KEYS, **HEALTH_KEYS}.items()))

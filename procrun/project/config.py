"""procrun.toml, or [tool.procrun] in pyproject.toml -> Config -> the settings of each process type.

Which files: those named explicitly (`--config a.toml --config b.toml`, merged in that order);
else `procrun.toml` in the project directory; else the `[tool.procrun]` table of its
`pyproject.toml`; else built-in defaults. When procrun.toml exists it is the only file used, even
if pyproject.toml has a [tool.procrun] table too (Config.shadowed then names pyproject.toml so the
CLI can warn that it is ignored).

Merging: a later file wins key by key. Top-level keys replace; within [defaults] and each
[processes.<name>] each key replaces, except `env`, merged variable by variable. settings_for then
applies the merged tables as it would one file's.

Everything is validated while loading, each file on its own with file:line in each message
(configfile.py), so settings_for cannot fail; only depends_on needs the Procfile: it is checked,
against the merged Procfile and the merged settings, when the formation is built
(dependencies.py).
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from procrun.errors import ConfigError
from procrun.project.celery_worker import is_celery_worker
from procrun.project.configfile import (
    PYPROJECT_TABLE,
    ConfigLayer,
    Overrides,
    read_layer,
    table_at,
)
from procrun.project.healthkeys import DeclaredDependencies
from procrun.project.procfile import RELEASE_PROCESS, Procfile
from procrun.project.stackdefaults import stack_default
from procrun.project.textfile import no_such_file
from procrun.project.tomlfile import KeyPath, TomlFile, read_toml
from procrun.settings import (
    CELERY_WORKER_GRACE_SECONDS,
    DEFAULT_FORCE_KILL_SECONDS,
    GiveUpPolicy,
    ProcessSettings,
)

CONFIG_FILE_NAME = "procrun.toml"
PYPROJECT_FILE_NAME = "pyproject.toml"


def _no_overrides() -> Overrides:
    return MappingProxyType({})


def _no_processes() -> Mapping[str, Overrides]:
    return MappingProxyType({})


def _no_tables() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Config:
    sources: tuple[Path, ...] = ()
    """The files the settings came from, in merge order; none when procrun runs on defaults."""
    shutdown_timeout_seconds: float | None = None
    platform_deadline_seconds: float | None = None
    on_give_up: GiveUpPolicy = GiveUpPolicy.SHUTDOWN
    force_kill_after_seconds: float = DEFAULT_FORCE_KILL_SECONDS
    """A forced stop (second Ctrl-C): from the last signal it sends now to the SIGKILL."""
    defaults: Overrides = field(default_factory=_no_overrides)
    processes: Mapping[str, Overrides] = field(default_factory=_no_processes)
    tables: Mapping[str, str] = field(default_factory=_no_tables)
    """Process name -> `procrun.toml:12`: where the first file to have its table has it."""
    shadowed: Path | None = None
    """A pyproject.toml whose [tool.procrun] table is ignored because procrun.toml exists."""


def load_config(directory: Path, *explicit: Path) -> Config:
    """The Config for the project in `directory`, or from the `explicit` files merged in order (a
    missing one is an error; one named pyproject.toml is read for its [tool.procrun] table)."""
    if explicit:
        return merge_layers([_explicit_layer(path) for path in explicit])
    file = read_toml(directory / CONFIG_FILE_NAME)
    if file is not None:
        config = merge_layers(_layers(file, ()))
        return dataclasses.replace(config, shadowed=_shadowed(directory / PYPROJECT_FILE_NAME))
    pyproject = directory / PYPROJECT_FILE_NAME
    # A pyproject.toml that never mentions procrun is someone else's file: do not fail on it.
    if not _mentions_procrun(pyproject):
        return Config()
    file = read_toml(pyproject)
    return merge_layers(_layers(file, PYPROJECT_TABLE)) if file is not None else Config()


def _layers(file: TomlFile, root: KeyPath) -> list[ConfigLayer]:
    layer = read_layer(file, root)
    return [layer] if layer is not None else []


def _explicit_layer(path: Path) -> ConfigLayer:
    file = read_toml(path)
    if file is None:
        raise no_such_file(path, "--config")
    layer = read_layer(file, PYPROJECT_TABLE if path.name == PYPROJECT_FILE_NAME else ())
    if layer is None:
        raise ConfigError(f"{path}: no [tool.procrun] table")
    return layer


def merge_layers(layers: Sequence[ConfigLayer]) -> Config:
    """One Config from the layers of several files, later ones winning (see the module note)."""
    top: dict[str, Any] = {}  # Any: each value was type-checked for its field when read
    defaults: dict[str, object] = {}
    processes: dict[str, dict[str, object]] = {}
    tables: dict[str, str] = {}
    for layer in layers:
        top.update(layer.top)
        _merge_table(defaults, layer.defaults)
        for name, overrides in layer.processes.items():
            _merge_table(processes.setdefault(name, {}), overrides)
            tables.setdefault(name, layer.tables[name])
    return Config(
        sources=tuple(layer.source for layer in layers),
        defaults=MappingProxyType(defaults),
        processes=MappingProxyType(
            {name: MappingProxyType(table) for name, table in processes.items()}
        ),
        tables=MappingProxyType(tables),
        **top,
    )


def _merge_table(into: dict[str, object], overrides: Overrides) -> None:
    for key, value in overrides.items():
        earlier = into.get(key)
        if key == "env" and isinstance(earlier, Mapping) and isinstance(value, Mapping):
            value = MappingProxyType({**earlier, **value})
        into[key] = value


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
    return pyproject if file is not None and table_at(file.data, PYPROJECT_TABLE) else None

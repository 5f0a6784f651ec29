"""One settings file (procrun.toml, or [tool.procrun] in pyproject.toml) -> its validated layer.

Each file is checked on its own, so every message names that file and line; config.py merges the
layers of `--config a.toml --config b.toml` into one Config. A layer holds only what its file sets,
so that merging can tell "not set here" from "set to the default".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from procrun.errors import ConfigError
from procrun.project.healthkeys import HEALTH_KEYS
from procrun.project.processkeys import PROCESS_KEYS, choice, show_value
from procrun.project.procfile import PROCESS_NAME_PATTERN, is_valid_process_name
from procrun.project.tomlfile import KeyPath, TomlFile
from procrun.project.values import parse_duration
from procrun.quoting import did_you_mean, excerpt
from procrun.settings import GiveUpPolicy

PYPROJECT_TABLE: KeyPath = ("tool", "procrun")

Overrides = Mapping[str, object]
"""Validated ProcessSettings field values from one table, e.g. {"grace_seconds": 20.0}."""


@dataclass(frozen=True)
class ConfigLayer:
    """What one file sets: Config fields at the top level, and the tables of processes."""

    source: Path
    top: Mapping[str, object]
    """Config field -> value, only for the keys the file has, e.g. {"on_give_up": ...}."""
    defaults: Overrides
    processes: Mapping[str, Overrides]
    tables: Mapping[str, str]
    """Process name -> `procrun.toml:12`, where its [processes.<name>] table is."""


def table_at(data: Mapping[str, object], root: KeyPath) -> object:
    table: object = data
    for part in root:
        table = table.get(part) if isinstance(table, dict) else None
    return table


def read_layer(file: TomlFile, root: KeyPath) -> ConfigLayer | None:
    """The layer in table `root` of `file`; None when there is no such table."""
    table = table_at(file.data, root)
    if table is None:
        return None
    return _Reader(file, root).layer(table)


_TOP_LEVEL_KEYS = (
    "defaults",
    "force_kill_after",
    "on_give_up",
    "platform_deadline",
    "processes",
    "shutdown_timeout",
)
_DURATIONS = {
    "shutdown_timeout": "shutdown_timeout_seconds",
    "platform_deadline": "platform_deadline_seconds",
    "force_kill_after": "force_kill_after_seconds",
}


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

    def layer(self, value: object) -> ConfigLayer:
        table = self.table(value, ())
        self.check_keys(table, (), _TOP_LEVEL_KEYS)
        top: dict[str, object] = {
            field: parse_duration(table[key], self.what((key,)))
            for key, field in _DURATIONS.items()
            if key in table
        }
        if "on_give_up" in table:
            what = self.what(("on_give_up",))
            top["on_give_up"] = choice(GiveUpPolicy, table["on_give_up"], what)
        processes = self.table(table.get("processes", {}), ("processes",))
        for name in processes:
            if not is_valid_process_name(name):
                raise ConfigError(
                    f'{self.where(("processes", name))}: invalid process name "{excerpt(name)}": '
                    f'use only letters, digits, "_" and "-" ({PROCESS_NAME_PATTERN})'
                )
        return ConfigLayer(
            source=self.file.path,
            top=MappingProxyType(top),
            defaults=self.overrides(table.get("defaults", {}), ("defaults",)),
            processes=MappingProxyType(
                {
                    name: self.overrides(item, ("processes", name))
                    for name, item in processes.items()
                }
            ),
            tables=MappingProxyType({name: self.where(("processes", name)) for name in processes}),
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

"""The health keys of a process table in procrun.toml: `ready`, `ready_timeout`, `interval`,
`alive` and `depends_on`, with the converters that check them while loading.

A probe is a table with exactly one kind key (`{ tcp = "127.0.0.1:$PORT" }`) and the options that
kind takes. `$VAR` in a target is left alone: the health layer expands it from the process's own
environment when the probe runs, so only the shape is checked here. Each Probe remembers the
file:line it came from, for `procrun check` and for the events that report it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from procrun.errors import ConfigError
from procrun.project.processkeys import Convert, choice, show_value
from procrun.project.values import parse_duration
from procrun.quoting import did_you_mean, excerpt
from procrun.settings import (
    DEFAULT_PROBE_TIMEOUT_SECONDS,
    Condition,
    LivenessProbe,
    Probe,
    ProbeKind,
)

READY_KINDS = (ProbeKind.TCP, ProbeKind.HTTP, ProbeKind.LOG, ProbeKind.EXEC, ProbeKind.NOTIFY)
ALIVE_KINDS = (ProbeKind.TCP, ProbeKind.HTTP, ProbeKind.EXEC, ProbeKind.WATCHDOG)
_KINDS = frozenset(kind.value for kind in ProbeKind)
# The keys each kind takes besides its own; a liveness probe that polls adds _POLL_OPTIONS.
_OPTIONS = {
    ProbeKind.TCP: ("timeout",),
    ProbeKind.HTTP: ("status", "timeout"),
    ProbeKind.LOG: (),
    ProbeKind.EXEC: ("timeout",),
    ProbeKind.NOTIFY: (),
    ProbeKind.WATCHDOG: (),
}
_POLL_OPTIONS = ("every", "failures")
_SHAPES = {
    ProbeKind.TCP: '"host:port" like "127.0.0.1:$PORT"',
    ProbeKind.HTTP: 'a URL like "http://127.0.0.1:$PORT/health"',
    ProbeKind.LOG: "a regular expression matching a line the process prints",
    ProbeKind.EXEC: "a command that exits 0 when the process is fine",
}
_URL = re.compile(r"https?://\S", re.IGNORECASE)
_EXAMPLES = {"ready": '{ tcp = "127.0.0.1:$PORT" }', "alive": '{ exec = "...", every = "30s" }'}


def origin_of(what: str) -> str:
    """`procrun.toml:12` from `procrun.toml:12: ready` (the name never holds ": ")."""
    return what.rpartition(": ")[0]


def positive_duration(value: object, what: str) -> float:
    seconds = parse_duration(value, what)
    if seconds <= 0:
        raise ConfigError(f"{what} must be more than 0 s, got {show_value(value)}")
    return seconds


def _an(kind: ProbeKind) -> str:
    return f"an {kind}" if kind in (ProbeKind.HTTP, ProbeKind.EXEC) else f"a {kind}"


def _kind_of(table: Mapping[str, object], what: str, role: str) -> ProbeKind:
    """The one kind key of a probe table, or the error that says what is wrong with it."""
    kinds = READY_KINDS if role == "ready" else ALIVE_KINDS
    found = [ProbeKind(key) for key in table if key in _KINDS]
    for kind in found:
        if kind in kinds:
            continue
        if kind is ProbeKind.WATCHDOG:
            raise ConfigError(
                f'{what}: watchdog is a liveness probe: write alive = {{ watchdog = "30s" }}'
            )
        if kind is ProbeKind.NOTIFY:
            raise ConfigError(
                f"{what}: notify (READY=1, sent once) is a readiness probe; for liveness use "
                'alive = { watchdog = "30s" }, which expects WATCHDOG=1 pings'
            )
        raise ConfigError(
            f"{what}: {_an(kind)} probe cannot check liveness (a line printed once says nothing "
            f"about later); use {', '.join(kinds)}"
        )
    if len(found) > 1:
        raise ConfigError(f"{what}: one probe kind per table, got {' and '.join(found)}")
    if found:
        return found[0]
    valid = [str(kind) for kind in kinds]
    options = {option for kind in kinds for option in _OPTIONS[kind]}
    if role == "alive":
        options.update(_POLL_OPTIONS)
    for key in table:
        if key not in options:
            raise ConfigError(
                f'{what}: unknown key "{excerpt(key)}"{did_you_mean(key, valid)}; '
                f"expected one of {', '.join(valid)}"
            )
    raise ConfigError(f"{what}: no probe kind: expected one of {', '.join(valid)}")


def _probe_table(value: object, what: str, role: str) -> tuple[Probe, dict[str, object]]:
    """The probe in `value`, and the table, whose liveness keys the caller reads."""
    if not isinstance(value, dict):
        raise ConfigError(
            f"{what} must be a probe table like {_EXAMPLES[role]}, or false for none, got "
            f"{show_value(value)}"
        )
    kind = _kind_of(value, what, role)
    valid = (kind.value, *_OPTIONS[kind])
    if role == "alive" and kind is not ProbeKind.WATCHDOG:
        valid += _POLL_OPTIONS
    for key in value:
        if key not in valid and len(valid) == 1:
            raise ConfigError(f'{what}: {_an(kind)} probe takes no other key, got "{excerpt(key)}"')
        if key not in valid:
            raise ConfigError(
                f'{what}: unknown key "{excerpt(key)}" in {_an(kind)} probe'
                f"{did_you_mean(key, valid)}; expected one of {', '.join(valid)}"
            )
    timeout = DEFAULT_PROBE_TIMEOUT_SECONDS
    if "timeout" in value:
        timeout = positive_duration(value["timeout"], f"{what}.timeout")
    status = _status(value["status"], f"{what}.status") if "status" in value else None
    target = ""
    if kind is ProbeKind.WATCHDOG:
        # The period is the longest allowed gap between two WATCHDOG=1 pings.
        timeout = positive_duration(value[kind], f"{what}.{kind}")
    else:
        target = _target(kind, value[kind], f"{what}.{kind}", role)
    return Probe(kind, target, status, timeout, origin_of(what)), value


def _target(kind: ProbeKind, value: object, what: str, role: str) -> str:
    if kind is ProbeKind.NOTIFY:
        if value is True:
            return ""
        if value is False:
            raise ConfigError(f"{what} = false is no probe: use {role} = false")
        raise ConfigError(f"{what} must be true, got {show_value(value)}")
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ConfigError(f"{what} must be {_SHAPES[kind]}, got {show_value(value)}")
    if kind is ProbeKind.TCP:
        host, _, port = value.rpartition(":")
        if not host or not port:
            raise ConfigError(f'{what}: "{excerpt(value)}" is not {_SHAPES[kind]}')
        if "$" not in port and not (port.isdigit() and 0 < int(port) <= 65535):
            raise ConfigError(f'{what}: port "{excerpt(port)}" must be 1-65535 or like $PORT')
    elif kind is ProbeKind.HTTP and not _URL.match(value):
        raise ConfigError(f'{what}: "{excerpt(value)}" is not an http:// or https:// URL')
    elif kind is ProbeKind.LOG:
        try:
            re.compile(value)
        except re.error as exc:
            raise ConfigError(f'{what}: invalid regex "{excerpt(value)}": {exc}') from None
    return value


def _status(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ConfigError(f"{what} must be an HTTP status from 100 to 599, got {show_value(value)}")
    return value


def _ready(value: object, what: str, base: Path) -> Probe | None:
    if value is False:
        return None
    return _probe_table(value, what, "ready")[0]


def _alive(value: object, what: str, base: Path) -> LivenessProbe | None:
    if value is False:
        return None
    probe, table = _probe_table(value, what, "alive")
    liveness = LivenessProbe(probe)
    if "every" in table:
        every = positive_duration(table["every"], f"{what}.every")
        liveness = replace(liveness, every_seconds=every)
    if "failures" in table:
        failures = table["failures"]
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ConfigError(
                f"{what}.failures must be a whole number, 1 or more, got {show_value(failures)}"
            )
        liveness = replace(liveness, failures=failures)
    return liveness


def _positive(value: object, what: str, base: Path) -> float:
    return positive_duration(value, what)


@dataclass(frozen=True)
class DeclaredDependencies:
    """One table's `depends_on`, as written: checked against the Procfile when the formation is
    built (formation.py), since procrun.toml may serve more than one Procfile."""

    what: str
    """`procrun.toml:14: depends_on`: where it was written, the start of every message about it."""
    wanted: Mapping[str, Condition | None]
    """Procfile names, and the condition asked; None (the list form) means "the natural one"."""

    @property
    def origin(self) -> str:
        return origin_of(self.what)

    def conditions(self, is_oneshot: Callable[[str], bool]) -> Mapping[str, Condition]:
        """The list form waits for a one-shot to complete, for anything else to be ready."""
        natural = {True: Condition.COMPLETED, False: Condition.READY}
        return MappingProxyType(
            {
                name: condition or natural[is_oneshot(name)]
                for name, condition in self.wanted.items()
            }
        )


def _depends_on(value: object, what: str, base: Path) -> DeclaredDependencies:
    wanted: dict[str, Condition | None] = {}
    if isinstance(value, list):
        for name in value:
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{what} must list process names, got {show_value(name)}")
            if name in wanted:
                raise ConfigError(f'{what}: "{excerpt(name)}" is listed twice')
            wanted[name] = None
    elif isinstance(value, dict):
        for name, condition in value.items():
            wanted[name] = choice(Condition, condition, f"{what}.{excerpt(name)}")
    else:
        raise ConfigError(
            f'{what} must be a list like ["redis"] or a table like {{ redis = "ready" }}, '
            f"got {show_value(value)}"
        )
    return DeclaredDependencies(what, MappingProxyType(wanted))


# procrun.toml key -> (ProcessSettings field, converter), as processkeys.PROCESS_KEYS.
HEALTH_KEYS: dict[str, tuple[str, Convert]] = {
    "alive": ("alive", _alive),
    "depends_on": ("depends_on", _depends_on),
    "interval": ("ready_interval_seconds", _positive),
    "ready": ("ready", _ready),
    "ready_timeout": ("ready_timeout_seconds", _positive),
}

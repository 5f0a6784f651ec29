"""The resolved, immutable settings procrun runs with: what parsers produce and the core reads."""

from __future__ import annotations

import enum
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

SHELL = "/bin/sh"
"""Runs every Procfile command, and the undertaker."""

DEFAULT_GRACE_SECONDS = 30.0
CELERY_WORKER_GRACE_SECONDS = 600.0
DEFAULT_SECOND_SIGNAL_MARGIN_SECONDS = 10.0


class RestartPolicy(enum.StrEnum):
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    NEVER = "never"


class GiveUpPolicy(enum.StrEnum):
    """What procrun does when a process has spent its restart budget."""

    SHUTDOWN = "shutdown"
    CONTINUE = "continue"


def _empty_env() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ProcessSettings:
    """Per-process-type settings after defaults, the Celery rule and procrun.toml are applied."""

    grace_seconds: float = DEFAULT_GRACE_SECONDS
    stop_signal: signal.Signals = signal.SIGTERM
    # Sent to the leader `second_signal_margin_seconds` before the grace ends (Celery: QUIT, so
    # unacknowledged messages are requeued now rather than after Redis's visibility timeout).
    second_signal: signal.Signals | None = None
    second_signal_margin_seconds: float = DEFAULT_SECOND_SIGNAL_MARGIN_SECONDS
    restart: RestartPolicy = RestartPolicy.ALWAYS
    min_uptime_seconds: float = 1.0
    max_restarts: int = 10
    restart_window_seconds: float = 300.0
    backoff_initial_seconds: float = 0.1
    backoff_max_seconds: float = 30.0
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=_empty_env)
    oneshot: bool = False
    count: int = 1
    # The memory watchdog restarts the process gracefully when its whole tree's RSS stays above
    # max_memory_bytes for max_memory_for_seconds.
    max_memory_bytes: int | None = None
    max_memory_for_seconds: float = 30.0


@dataclass(frozen=True)
class ProcessSpec:
    """One instance to run (`web.1`): everything needed to spawn and stop it, nothing mutable."""

    name: str
    kind: str
    index: int
    command: str
    """As the Procfile says it, for messages."""
    argv: tuple[str, ...]
    """What is executed: the command through the shell (procrun/project/shell.py)."""
    env: Mapping[str, str]
    cwd: Path
    settings: ProcessSettings
    source: str = ""
    """Where the command came from, e.g. `Procfile:3`, for messages."""


DEFAULT_FORCE_KILL_SECONDS = 3.0


@dataclass(frozen=True)
class SupervisorOptions:
    """Formation-wide settings the supervisor runs with."""

    shutdown_timeout_seconds: float | None = None
    on_give_up: GiveUpPolicy = GiveUpPolicy.SHUTDOWN
    force_kill_seconds: float = DEFAULT_FORCE_KILL_SECONDS
    """After a forced stop's last signal (QUIT for a Celery worker), how long until SIGKILL."""

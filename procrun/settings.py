"""The resolved, immutable settings procrun runs with: what parsers produce and the core reads."""

from __future__ import annotations

import enum
import signal
import string
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


class ProbeKind(enum.StrEnum):
    TCP = "tcp"  # a connect to host:port succeeds
    HTTP = "http"  # a GET answers 2xx (or the status asked for)
    LOG = "log"  # a line of the process's own output matches a regex
    EXEC = "exec"  # a command exits 0
    NOTIFY = "notify"  # sd_notify READY=1 on the process's own NOTIFY_SOCKET
    WATCHDOG = "watchdog"  # sd_notify WATCHDOG=1 at least once per period (liveness only)


POLLED_PROBES = frozenset({ProbeKind.TCP, ProbeKind.HTTP, ProbeKind.EXEC})
DEFAULT_PROBE_TIMEOUT_SECONDS = 5.0
DEFAULT_READY_TIMEOUT_SECONDS = 60.0
DEFAULT_READY_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True)
class Probe:
    """One check of a process, as procrun.toml or a stack default gives it. `$VAR` in `target`
    is expanded from the process's own environment when the probe runs."""

    kind: ProbeKind
    target: str = ""
    """`127.0.0.1:$PORT`, a URL, a regex, a command; empty for notify."""
    status: int | None = None
    """http: the status to expect; None means any 2xx."""
    timeout_seconds: float = DEFAULT_PROBE_TIMEOUT_SECONDS
    """One attempt's limit (tcp, http, exec); for watchdog, the longest gap between pings."""
    origin: str = ""
    """Where it comes from, for `procrun check`: `procrun.toml:12` or `default for gunicorn`."""

    def describe(self, env: Mapping[str, str] | None = None) -> str:
        """`tcp 127.0.0.1:5000`, `notify`: what status and events show it waits for, with
        `$VAR`s expanded from `env` when given."""
        if not self.target:
            return str(self.kind)
        target = self.target if env is None else expand_variables(self.target, env)
        return f"{self.kind} {target}"


def expand_variables(text: str, env: Mapping[str, str]) -> str:
    """`$VAR` and `${VAR}` from `env`; an unknown name stays as written."""
    return string.Template(text).safe_substitute(env)


@dataclass(frozen=True)
class LivenessProbe:
    """`alive = { exec = "...", every = "30s", timeout = "10s", failures = 3 }`."""

    probe: Probe
    every_seconds: float = 30.0
    failures: int = 3


class Condition(enum.StrEnum):
    """What a dependency must have reached before its dependent starts."""

    STARTED = "started"  # spawned
    READY = "ready"  # RUNNING: its probe passed, or up for min_uptime without one
    COMPLETED = "completed"  # a one-shot that exited 0


def _no_dependencies() -> Mapping[str, Condition]:
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
    # Readiness (procrun/health/): STARTING until `ready` passes, within ready_timeout_seconds;
    # polled kinds back off from 10 ms up to ready_interval_seconds between attempts.
    ready: Probe | None = None
    ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS
    ready_interval_seconds: float = DEFAULT_READY_INTERVAL_SECONDS
    alive: LivenessProbe | None = None
    depends_on: Mapping[str, Condition] = field(default_factory=_no_dependencies)
    """Process types (Procfile names) and what each must reach before this type starts."""
    restart_with: bool = False
    """Restart this type's instances when a dependency of theirs restarts."""
    # Development (`procrun start --watch`, procrun/watch/): gitignore-style patterns, relative
    # to the project directory, of the files whose change restarts this type.
    watch: tuple[str, ...] = ()
    watch_ignore: tuple[str, ...] = ()


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
    shell_leads: bool = False
    """/bin/sh leads the group while earlier steps of a compound command run: a stop signal for
    the leader goes to the running step until the program that ends up leading has exec'd."""


DEFAULT_FORCE_KILL_SECONDS = 3.0


@dataclass(frozen=True)
class SupervisorOptions:
    """Formation-wide settings the supervisor runs with."""

    shutdown_timeout_seconds: float | None = None
    on_give_up: GiveUpPolicy = GiveUpPolicy.SHUTDOWN
    force_kill_seconds: float = DEFAULT_FORCE_KILL_SECONDS
    """After a forced stop's last signal (QUIT for a Celery worker), how long until SIGKILL."""
    watching: bool = False
    """`--watch`: a process that watches files and gives up waits for the next change instead
    of stopping the formation."""

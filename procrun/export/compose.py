"""`procrun export compose`: one Compose service per process type, in the Compose Specification's
format (no `version:` key; docker-compose 1.27+ and Compose v2 read it).

Each container runs `procrun start TYPE` as PID 1, so there is no `init: true` (docker-init would
stand between procrun and the SIGTERM). `docker compose stop` sends SIGTERM and SIGKILLs after
stop_grace_period: the type's deadline plus EXPORT_MARGIN_SECONDS. The healthcheck is `procrun
status TYPE`; depends_on waits for a dependency to be healthy (ready), started, or, for a
one-shot, to have completed. .env is referenced as env_file, never copied; procrun.toml's `env`
goes in `environment`, which Compose puts above env_file, as procrun puts it above .env.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from procrun.export.units import Export, Unit, duration
from procrun.export.yamltext import Generated, GeneratedFile, comment, entries, header
from procrun.settings import Condition

FILE_NAME = "docker-compose.yml"
# As the reference Dockerfile's HEALTHCHECK: three failures 30 s apart ride out a restart.
HEALTH_INTERVAL = "30s"
HEALTH_TIMEOUT = "10s"
HEALTH_RETRIES = 3
_CONDITIONS = {
    Condition.STARTED: "service_started",
    Condition.READY: "service_healthy",
    Condition.COMPLETED: "service_completed_successfully",
}


def generate(export: Export) -> Generated:
    notes = [note for note in (export.ignored_deadline_note(),) if note]
    env_files = _env_files(export, notes)
    items: list[tuple[list[str], dict[str, Any]]] = []
    for unit in export.units:
        service = _service(export, unit, env_files, notes)
        about = [unit.describe(export.cap, "stop_grace_period")]
        items.append((about, {unit.kind: service}))
    text = (
        comment(
            header(
                "compose",
                export.sources,
                "One service per process type, each container running `procrun start TYPE` as "
                "PID 1 (so no `init: true`): procrun runs the type's own stop sequence on `docker "
                "compose stop`, within stop_grace_period.",
            )
        )
        + "services:\n"
        + entries(items)
    )
    return Generated((GeneratedFile(FILE_NAME, text),), tuple(notes), text)


def _service(export: Export, unit: Unit, env_files: list[str], notes: list[str]) -> dict[str, Any]:
    service: dict[str, Any] = {
        "image": _literal(export.options.image or ""),
        "command": list(unit.argv),
    }
    environment = dict(unit.deadline_env(export.cap)) | dict(export.procrun_env) | dict(unit.env)
    if unit.port is not None:
        environment = {"PORT": str(unit.port)} | environment
    service["environment"] = {key: _literal(value) for key, value in environment.items()}
    if env_files:
        service["env_file"] = env_files
    if unit.port is not None:
        # One replica publishes the port as is; several each get a free host port.
        service["ports"] = [f"{unit.port}:{unit.port}" if unit.count == 1 else str(unit.port)]
        if unit.count > 1:
            notes.append(
                f"{unit.kind}: {unit.count} replicas cannot share host port {unit.port}: each "
                "publishes it on a free host port; put a proxy in front"
            )
    if not unit.oneshot:
        service["healthcheck"] = {
            "test": ["CMD-SHELL", f"procrun status {unit.kind} || exit 1"],
            "interval": HEALTH_INTERVAL,
            "timeout": HEALTH_TIMEOUT,
            "retries": HEALTH_RETRIES,
            "start_period": duration(math.ceil(unit.settings.ready_timeout_seconds)),
        }
    if depends_on := _depends_on(export, unit, notes):
        service["depends_on"] = depends_on
    service["stop_signal"] = "SIGTERM"
    service["stop_grace_period"] = duration(unit.platform_deadline(export.cap))
    service["restart"] = "no" if unit.oneshot else "unless-stopped"
    service["deploy"] = {"replicas": unit.count}
    return service


def _depends_on(export: Export, unit: Unit, notes: list[str]) -> dict[str, Any]:
    wanted = dict(unit.depends_on)
    release = export.unit("release")
    if release is not None and not unit.oneshot:
        wanted.setdefault(release.kind, Condition.COMPLETED)  # release runs before anything
    conditions: dict[str, Any] = {}
    for name, condition in wanted.items():
        dependency = export.unit(name)
        if dependency is None:
            notes.append(f"{unit.kind}: depends on {name}, which is not exported: left out")
            continue
        if dependency.oneshot and condition is Condition.READY:
            condition = Condition.COMPLETED  # a one-shot has no healthcheck to pass
        conditions[name] = {"condition": _CONDITIONS[condition]}
    return conditions


def _env_files(export: Export, notes: list[str]) -> list[str]:
    """The .env files procrun would read, relative to the Compose file's directory."""
    explicit = export.options.env_files
    paths = [path.resolve() for path in explicit] or [export.root / ".env"]
    if not explicit and not paths[0].exists():
        notes.append(f"no {paths[0]}: no env_file (create it, or give -e FILE, and export again)")
        return []
    base = export.options.output.resolve() if export.options.output else export.root
    return [_relative(path, base) for path in paths]


def _relative(path: Path, base: Path) -> str:
    relative = os.path.relpath(path, base)
    return _literal(relative if relative.startswith("../") else f"./{relative}")


def _literal(value: str) -> str:
    """A value Compose does not interpolate: `$` would start a variable of the host's."""
    return value.replace("$", "$$")

"""`procrun export render`: a Render Blueprint with one service per process type: a web service
for each type with a PORT (web), a background worker (`type: worker`) for each of the others.

What procrun knows is generated: the command (`procrun start TYPE`), numInstances from the
count, maxShutdownDelaySeconds from the type's deadline, healthCheckPath where the type's ready
probe is an http one on its PORT, preDeployCommand for a release. What only Render knows (the
runtime, plan, region, envVars, a Key Value or database) comes from the project's own Blueprint
for one service, render.yaml (or --blueprint): each generated service starts from the settings
of its service that runs procrun, and its other services are carried over unchanged.

Render sends SIGTERM, then SIGKILL maxShutdownDelaySeconds later (1-300 s). Inside, procrun
cuts every grace to shutdown_timeout (procrun.toml, or --shutdown-timeout); a type whose deadline
would still end too late for Render's 300 s gets PROCRUN_SHUTDOWN_TIMEOUT in its envVars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from procrun.errors import UsageError
from procrun.export.probes import direct_probe
from procrun.export.units import (
    EXPORT_MARGIN_SECONDS,
    Export,
    Unit,
    dns_label,
    duration,
    relative_to,
)
from procrun.export.yamltext import Generated, GeneratedFile, comment, dump, entries, header
from procrun.quoting import one_line
from procrun.settings import ProbeKind

BLUEPRINT_FILE = "render.yaml"
MAX_SHUTDOWN_DELAY_SECONDS = 300
"""Render's largest maxShutdownDelaySeconds."""
FREE_PLAN = "free"
PAID_PLAN = "starter"
"""Background workers have no free plan; the smallest paid one."""
IMAGE_RUNTIMES = frozenset({"docker", "image"})
# Settings of the Blueprint's procrun service that each generated service starts from; the rest
# (name, type, command, health check, instances, shutdown delay) is procrun's to say.
_CARRIED = (
    "runtime",
    "plan",
    "region",
    "repo",
    "branch",
    "rootDir",
    "autoDeployTrigger",
    "buildCommand",
    "dockerfilePath",
    "dockerContext",
    "registryCredential",
    "image",
    "buildFilter",
)
_RUNS_PROCRUN = frozenset({"web", "worker", "pserv"})


def generate(export: Export) -> Generated:
    path, blueprint = _base(export)
    services = blueprint.get("services") or []
    ours = [s for s in services if _runs_procrun(s)]
    template = next((s for s in ours if s.get("type") == "web"), ours[0] if ours else {})
    notes: list[str] = []
    generated: list[tuple[list[str], dict[str, Any]]] = []
    for unit in export.units:
        if unit.oneshot:
            if not unit.release:
                notes.append(f"{unit.kind} runs once, which a Render service cannot: not exported")
            continue
        service, about = _service(export, unit, template, notes)
        generated.append((about, service))
    if generated and export.unit("release") is not None:
        generated[0][1]["preDeployCommand"] = "procrun start release"
    workers = [s["name"] for _, s in generated if s["type"] == "worker"]
    if workers and template.get("plan") == FREE_PLAN:
        notes.append(f"{', '.join(workers)}: background workers have no free plan: {PAID_PLAN}")
    items = [(about, [service]) for about, service in generated]
    items += [([f"From {path.name}."], [s]) for s in services if not _runs_procrun(s)]
    sources = [*export.sources, *([relative_to(path, export.root)] if services else [])]
    rest = "".join("\n" + dump({k: v}) for k, v in blueprint.items() if k != "services")
    text = comment(header("render", sources, *_about(path))) + "services:\n" + entries(items)
    return Generated((GeneratedFile(BLUEPRINT_FILE, text + rest),), tuple(notes), text + rest)


def _about(path: Path) -> list[str]:
    return [
        "A Render Blueprint with one service per process type, each running `procrun start "
        "TYPE` in the image, so every process keeps procrun's stop sequence, restarts and log "
        f"prefixes. Each service starts from the settings of {path.name}'s service that runs "
        f"procrun; {path.name}'s other services are carried over.",
        "",
        "maxShutdownDelaySeconds is when Render SIGKILLs after its SIGTERM: the type's grace, cut "
        f"to shutdown_timeout, plus {EXPORT_MARGIN_SECONDS:g} s for procrun to reap and exit, at "
        f"most {MAX_SHUTDOWN_DELAY_SECONDS} s.",
    ]


def _service(
    export: Export, unit: Unit, template: dict[str, Any], notes: list[str]
) -> tuple[dict[str, Any], list[str]]:
    kind = "web" if unit.port is not None else "worker"
    service: dict[str, Any] = {"type": kind, "name": f"{export.app}-{dns_label(unit.kind)}"}
    service |= {key: template[key] for key in _CARRIED if key in template}
    service.setdefault("runtime", "docker")
    dockerfile = (export.root / "Dockerfile").exists()
    if service["runtime"] == "docker" and "dockerfilePath" not in service and dockerfile:
        service["dockerfilePath"] = "./Dockerfile"
    plan = service.get("plan")
    if plan is None or (kind == "worker" and plan == FREE_PLAN):
        service["plan"] = PAID_PLAN
    command = " ".join(unit.argv)
    service["dockerCommand" if service["runtime"] in IMAGE_RUNTIMES else "startCommand"] = command
    ready = direct_probe(unit.ready, unit.port)
    if kind == "web" and ready is not None and ready.kind is ProbeKind.HTTP:
        service["healthCheckPath"] = ready.path
    if kind == "web" and "domains" in template:
        service["domains"] = template["domains"]
    service["numInstances"] = unit.count
    cap, cut, about = _deadline(export, unit, notes)
    service["maxShutdownDelaySeconds"] = unit.platform_deadline(cap)
    env = [dict(item) for item in template.get("envVars") or []]
    known = {item.get("key") for item in env}
    env += [{"key": k, "value": v} for k, v in unit.env.items() if k not in known]
    if cut is not None:
        env.append({"key": "PROCRUN_SHUTDOWN_TIMEOUT", "value": cut})
    if env:
        service["envVars"] = env
    return service, about


def _deadline(
    export: Export, unit: Unit, notes: list[str]
) -> tuple[float | None, str | None, list[str]]:
    """The shutdown deadline procrun runs this type under on Render, the PROCRUN_SHUTDOWN_TIMEOUT
    that needs (when shutdown_timeout leaves the type's deadline too late), and the comment."""
    cap = export.project.shutdown_timeout
    cut = None
    grace = unit.settings.grace_seconds
    most = MAX_SHUTDOWN_DELAY_SECONDS - EXPORT_MARGIN_SECONDS
    if unit.platform_deadline(cap) > MAX_SHUTDOWN_DELAY_SECONDS:
        cap, cut = most, duration(most)
        notes.append(
            f"{unit.kind}: grace {grace:g} s is longer than Render allows (it SIGKILLs at most "
            f"{MAX_SHUTDOWN_DELAY_SECONDS} s after its SIGTERM): PROCRUN_SHUTDOWN_TIMEOUT="
            f"{duration(most)} in its envVars cuts it to {most:g} s"
        )
    elif grace + EXPORT_MARGIN_SECONDS > MAX_SHUTDOWN_DELAY_SECONDS:
        notes.append(
            f"{unit.kind}: grace {grace:g} s is cut to {unit.deadline(cap):g} s by "
            f"shutdown_timeout, since Render SIGKILLs at most {MAX_SHUTDOWN_DELAY_SECONDS} s "
            "after its SIGTERM"
        )
    return cap, cut, [unit.describe(cap, "maxShutdownDelaySeconds")]


def _runs_procrun(service: dict[str, Any]) -> bool:
    """A service of the base Blueprint that runs procrun: the image's CMD, or `procrun start`."""
    if service.get("type") not in _RUNS_PROCRUN:
        return False
    command = service.get("dockerCommand") or service.get("startCommand")
    if command is None:
        return service.get("runtime") in IMAGE_RUNTIMES
    return str(command).split()[:2] == ["procrun", "start"]


def _base(export: Export) -> tuple[Path, dict[str, Any]]:
    """--blueprint, else render.yaml in the project when there is one; {} without."""
    given = export.options.blueprint
    path = given.resolve() if given is not None else export.root / BLUEPRINT_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        if given is not None:
            raise UsageError(f"--blueprint: no such file: {path}") from None
        return path, {}
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not YAML: {one_line(str(error))}") from None
    if document is None:
        return path, {}
    if not isinstance(document, dict) or not isinstance(document.get("services", []), list):
        raise UsageError(f"{path}: not a Render Blueprint (a mapping with a services list)")
    return path, document

"""`procrun export kubernetes`: one apps/v1 Deployment per process type.

Each pod runs `procrun start TYPE` as PID 1. On a pod's deletion the kubelet sends SIGTERM to
procrun and SIGKILL at terminationGracePeriodSeconds; that is the type's deadline plus
EXPORT_MARGIN_SECONDS, so the SIGKILL comes after procrun's whole stop sequence (the second
signal and the SIGKILL to the group are procrun's, inside the pod). Readiness is a direct httpGet
or tcpSocket where the type's probe is one on its PORT, else `procrun status TYPE` (exit 0 once
the type is RUNNING, which means ready). Secrets come from a Secret named `<app>-env`, by
reference; procrun.toml's `env` goes in a ConfigMap listed before it, so that the Secret's
values win, as the real environment wins over procrun.toml under procrun alone.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from procrun.errors import UsageError
from procrun.export.probes import DirectProbe, direct_probe, status_command
from procrun.export.units import Export, Unit, dns_label
from procrun.export.yamltext import Generated, GeneratedFile, comment, dump, header
from procrun.quoting import excerpt
from procrun.settings import LivenessProbe, ProbeKind

FALLBACK_UID = 10001
"""The reference Dockerfile's uid, when the project's Dockerfile names none we can read."""
PROBE_PERIOD_SECONDS = 10
STATUS_TIMEOUT_SECONDS = 5
"""`procrun status` answers in well under a second; a busy node may take longer to start Python."""
FAILURE_THRESHOLD = 3
_USER = re.compile(r"^\s*USER\s+(\S+)", re.IGNORECASE | re.MULTILINE)
_NUMERIC_USER = re.compile(r"(\d+)(?::(\d+))?")


def generate(export: Export) -> Generated:
    uid, gid, uid_note = _user(export)
    notes = [note for note in (export.ignored_deadline_note(), uid_note) if note]
    files: list[GeneratedFile] = []
    documents: list[str] = []
    for unit in export.units:
        if unit.oneshot:
            notes.append(
                f"{unit.kind} runs once, which a Deployment cannot express (it restarts what "
                f"exits): not exported; run `{' '.join(unit.argv)}` as a Job"
            )
            continue
        if unit.depends_on:
            wanted = ", ".join(f"{name} ({c})" for name, c in unit.depends_on.items())
            notes.append(
                f"{unit.kind}: depends_on {wanted} is not expressed: Deployments start in no "
                "order, so it must wait for what it needs itself"
            )
        if unit.alive is not None and _live_probe(unit) is None:
            notes.append(
                f"{unit.kind}: its alive probe ({unit.alive.probe.kind}) has no kubelet "
                f"equivalent: procrun runs it inside the pod, and the livenessProbe asks "
                f"`procrun status {unit.kind}`"
            )
        text = _documents(export, unit, uid, gid)
        documents.append(text)
        files.append(
            GeneratedFile(f"{export.app}-{dns_label(unit.kind)}.yaml", f"{_header(export)}\n{text}")
        )
    stream = _header(export) + "".join(f"\n---\n{text}" for text in documents)
    return Generated(tuple(files), tuple(notes), stream)


def _header(export: Export) -> str:
    secret = f"{export.app}-env"
    return comment(
        header(
            "kubernetes",
            export.sources,
            "One Deployment per process type, each pod running `procrun start TYPE` as PID 1, so "
            "every process keeps procrun's stop sequence, restarts and log prefixes. "
            "terminationGracePeriodSeconds is each type's deadline plus 10 s for procrun to exit, "
            "so the kubelet's SIGKILL comes after procrun's own.",
            f"Secrets are read from the Secret {secret}, which is not written here: kubectl "
            f"create secret generic {secret} --from-env-file=.env",
        )
    )


def _documents(export: Export, unit: Unit, uid: int, gid: int | None) -> str:
    name = f"{export.app}-{dns_label(unit.kind)}"
    labels = {"app.kubernetes.io/name": export.app, "app.kubernetes.io/component": unit.kind}
    env_from: list[dict[str, Any]] = []
    text = ""
    if unit.env:
        config_map = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-env", "labels": labels},
            "data": dict(unit.env),
        }
        text += comment([f"{unit.kind}'s env from procrun.toml."]) + dump(config_map) + "---\n"
        env_from.append({"configMapRef": {"name": f"{name}-env"}})
    env_from.append({"secretRef": {"name": f"{export.app}-env"}})
    container: dict[str, Any] = {
        "name": dns_label(unit.kind),
        "image": export.options.image,
        "command": list(unit.argv),
    }
    env = dict(unit.deadline_env(export.cap)) | dict(export.procrun_env)
    if unit.port is not None:
        container["ports"] = [{"name": "http", "containerPort": unit.port, "protocol": "TCP"}]
        env = {"PORT": str(unit.port)} | env
    container["env"] = [{"name": key, "value": value} for key, value in env.items()]
    container["envFrom"] = env_from
    container["readinessProbe"] = _ready_probe(unit)
    if unit.alive is not None:
        container["livenessProbe"] = _liveness(unit, unit.alive)
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    pod_security: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": uid}
    if gid is not None:
        pod_security["runAsGroup"] = gid
    pod_security["seccompProfile"] = {"type": "RuntimeDefault"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": unit.count,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": unit.platform_deadline(export.cap),
                    "securityContext": pod_security,
                    "containers": [container],
                },
            },
        },
    }
    about = [unit.describe(export.cap, "terminationGracePeriodSeconds")]
    return text + comment(about) + dump(deployment)


def _ready_probe(unit: Unit) -> dict[str, Any]:
    ready = unit.ready
    direct = direct_probe(ready, unit.port)
    if ready is None or direct is None:
        return {
            "exec": {"command": status_command(unit)},
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": STATUS_TIMEOUT_SECONDS,
            "failureThreshold": FAILURE_THRESHOLD,
        }
    return _direct(direct, unit) | {
        "periodSeconds": PROBE_PERIOD_SECONDS,
        "timeoutSeconds": math.ceil(ready.timeout_seconds),
        "failureThreshold": FAILURE_THRESHOLD,
    }


def _live_probe(unit: Unit) -> DirectProbe | None:
    return direct_probe(unit.alive.probe if unit.alive else None, unit.port)


def _liveness(unit: Unit, alive: LivenessProbe) -> dict[str, Any]:
    direct = _live_probe(unit)
    if direct is None:
        check: dict[str, Any] = {"exec": {"command": status_command(unit)}}
        timeout = STATUS_TIMEOUT_SECONDS
    else:
        check = _direct(direct, unit)
        timeout = math.ceil(alive.probe.timeout_seconds)
    return check | {
        # Not before the type has had its time to become ready.
        "initialDelaySeconds": math.ceil(unit.settings.ready_timeout_seconds),
        "periodSeconds": math.ceil(alive.every_seconds),
        "timeoutSeconds": timeout,
        "failureThreshold": alive.failures,
    }


def _direct(direct: DirectProbe, unit: Unit) -> dict[str, Any]:
    if direct.kind is ProbeKind.TCP:
        return {"tcpSocket": {"port": unit.port}}
    return {"httpGet": {"path": direct.path, "port": unit.port, "scheme": direct.scheme}}


def _user(export: Export) -> tuple[int, int | None, str | None]:
    """runAsUser and runAsGroup: --user, else the Dockerfile's numeric USER, else 10001."""
    if export.options.user is not None:
        given = _NUMERIC_USER.fullmatch(export.options.user)
        if given is None:
            raise UsageError(
                f'--user: expected a numeric "<uid>" or "<uid>:<gid>" for kubernetes, got '
                f'"{excerpt(export.options.user)}"'
            )
        return int(given[1]), int(given[2]) if given[2] else None, None
    found = _dockerfile_user(export.root / "Dockerfile")
    if found is not None:
        return found[0], found[1], None
    return (
        FALLBACK_UID,
        FALLBACK_UID,
        f"no numeric USER in {export.root / 'Dockerfile'}: runAsUser {FALLBACK_UID} "
        "(give --user UID[:GID] for the image's own)",
    )


def _dockerfile_user(path: Path) -> tuple[int, int | None] | None:
    """The uid (and gid) of the last USER instruction, when it is numeric."""
    try:
        users = _USER.findall(path.read_text(errors="replace"))
    except OSError:
        return None
    numeric = _NUMERIC_USER.fullmatch(users[-1]) if users else None
    if numeric is None:
        return None
    return int(numeric[1]), int(numeric[2]) if numeric[2] else None

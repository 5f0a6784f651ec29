"""`procrun export kubernetes`: every manifest passes kubernetes-validate (offline schemas, strict:
unknown fields are errors) for 1.30 and the newest version it knows, and carries the project's
numbers: replicas, the grace the kubelet must wait for, PORT, probes, the Dockerfile's uid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from procrun.export.units import EXPORT_MARGIN_SECONDS
from tests.export.projects import (
    REPO,
    SECRET_VALUE,
    by_kind,
    documents,
    exported,
    sample_project,
)

IMAGE = "registry.example.com/procrun-app:1.0"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
WORKER_GRACE_SECONDS = 660  # procrun.toml: grace = "11m"


def validate(docs: list[dict[str, Any]]) -> None:
    assert docs
    for doc in docs:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(deployment).get("env", [])}


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, Any]]:
    result = exported(REPO, "kubernetes", "--image", IMAGE)
    docs = documents(result.stdout)
    validate(docs)
    return by_kind(docs, "Deployment")


def test_the_reference_app_is_one_deployment_per_type(
    reference: dict[str, dict[str, Any]],
) -> None:
    assert set(reference) == {"procrun-web", "procrun-worker", "procrun-beat"}
    for name, deployment in reference.items():
        kind = name.removeprefix("procrun-")
        assert deployment["apiVersion"] == "apps/v1"
        assert deployment["spec"]["replicas"] == 1
        assert container(deployment)["command"] == ["procrun", "start", kind]
        assert container(deployment)["image"] == IMAGE
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == labels


def test_the_kubelet_waits_for_the_worker_s_whole_grace(
    reference: dict[str, dict[str, Any]],
) -> None:
    worker = reference["procrun-worker"]
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= WORKER_GRACE_SECONDS + EXPORT_MARGIN_SECONDS
    # procrun inside the pod is told the same deadline, over procrun.toml's 290 s for Render.
    env = env_of(worker)
    assert env["PROCRUN_SHUTDOWN_TIMEOUT"] == f"{WORKER_GRACE_SECONDS}s"
    assert env["PROCRUN_PLATFORM_DEADLINE"] == f"{grace}s"
    web = reference["procrun-web"]["spec"]["template"]["spec"]
    assert web["terminationGracePeriodSeconds"] >= 30 + EXPORT_MARGIN_SECONDS


def test_web_gets_its_port_and_every_type_a_readiness_probe(
    reference: dict[str, dict[str, Any]],
) -> None:
    web = container(reference["procrun-web"])
    assert web["ports"] == [{"name": "http", "containerPort": 5000, "protocol": "TCP"}]
    assert env_of(reference["procrun-web"])["PORT"] == "5000"
    for name in ("procrun-worker", "procrun-beat"):
        assert "ports" not in container(reference[name])
        assert "PORT" not in env_of(reference[name])
    # gunicorn's readiness is sd_notify and the worker's a log line: the kubelet asks procrun.
    for name, deployment in reference.items():
        probe = container(deployment)["readinessProbe"]
        assert probe["exec"]["command"] == ["procrun", "status", name.removeprefix("procrun-")]
        assert "livenessProbe" not in container(deployment)  # procrun.toml sets no alive probe


def test_pods_run_as_the_dockerfile_s_user_and_read_secrets_by_name(
    reference: dict[str, dict[str, Any]],
) -> None:
    for deployment in reference.values():
        pod = deployment["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert (pod["runAsUser"], pod["runAsGroup"]) == (10001, 10001)  # Dockerfile: USER
        assert container(deployment)["securityContext"]["allowPrivilegeEscalation"] is False
        assert container(deployment)["envFrom"] == [{"secretRef": {"name": "procrun-env"}}]


def test_the_sample_s_probes_env_and_counts(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    result = exported(project, "kubernetes", "--image", IMAGE, "--app", "sample", "-c", "worker=3")
    assert SECRET_VALUE not in result.stdout
    docs = documents(result.stdout)
    validate(docs)
    deployments = by_kind(docs, "Deployment")
    # release runs once: no Deployment, and a note says what to do instead.
    names = {"sample-web", "sample-worker", "sample-clock-tick", "sample-api"}
    assert set(deployments) == names
    assert any("release runs once" in note for note in result.notes)
    worker = deployments["sample-worker"]
    assert worker["spec"]["replicas"] == 3
    # procrun.toml's count = 2 is per supervisor: each pod runs one worker.
    assert container(worker)["command"] == ["procrun", "start", "-c", "worker=1", "worker"]
    # shutdown_timeout = "25s" is not the platform's: the kubelet waits for the 2 min grace.
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 130
    assert any("shutdown_timeout 25 s (procrun.toml) is not used" in n for n in result.notes)
    # Its alive probe is an exec: procrun runs it; the kubelet asks procrun status.
    live = container(worker)["livenessProbe"]
    assert live["exec"]["command"] == ["procrun", "status", "worker"]
    assert (live["periodSeconds"], live["failureThreshold"]) == (60, 3)
    assert any("worker: its alive probe (exec)" in note for note in result.notes)
    assert any("worker: depends_on web (ready)" in note for note in result.notes)

    web = container(deployments["sample-web"])
    assert web["readinessProbe"]["httpGet"] == {"path": "/health", "port": 5100, "scheme": "HTTP"}
    assert web["livenessProbe"]["tcpSocket"] == {"port": 5100}
    assert web["livenessProbe"]["periodSeconds"] == 15
    assert web["livenessProbe"]["failureThreshold"] == 2
    # procrun.toml's env, in a ConfigMap listed before the Secret, whose values win.
    (config_map,) = by_kind(docs, "ConfigMap").values()
    assert config_map["data"] == {"LOG_LEVEL": "info"}
    assert web["envFrom"] == [
        {"configMapRef": {"name": config_map["metadata"]["name"]}},
        {"secretRef": {"name": "sample-env"}},
    ]
    api = container(deployments["sample-api"])
    assert api["ports"][0]["containerPort"] == 5400  # Procfile position 4: 5000 + 400
    assert api["readinessProbe"]["tcpSocket"] == {"port": 5400}
    assert "ports" not in container(deployments["sample-clock-tick"])
    for deployment in deployments.values():
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 1234


def test_one_name_and_one_file_per_type(tmp_path: Path) -> None:
    project = sample_project(tmp_path / "project")
    out = tmp_path / "manifests"
    result = exported(project, "kubernetes", "--image", IMAGE, "--app", "s", "-o", str(out), "api")
    assert result.stdout.splitlines() == [f"wrote {out / 's-api.yaml'}"]
    assert sorted(p.name for p in out.iterdir()) == ["s-api.yaml"]
    docs = documents((out / "s-api.yaml").read_text())
    validate(docs)
    assert [doc["metadata"]["name"] for doc in docs] == ["s-api"]


def test_a_user_given_wins_over_the_dockerfile(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    (project / "Dockerfile").write_text("FROM python:3.12-slim\nUSER app\n")
    result = exported(project, "kubernetes", "--image", IMAGE, "--app", "s", "web")
    (deployment,) = by_kind(documents(result.stdout), "Deployment").values()
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    assert any("no numeric USER" in note for note in result.notes)
    given = exported(project, "kubernetes", "--image", IMAGE, "--user", "2000:3000", "web")
    (deployment,) = by_kind(documents(given.stdout), "Deployment").values()
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (2000, 3000)

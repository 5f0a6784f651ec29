"""`procrun export render`: the repository's render.split.yaml is its output (the one generated
file compared as text, since the issue asks for exactly that), and other exports pass the checks
tests/app/test_render.py applies to the repository's Blueprints."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.app.test_render import (
    check_deadlines,
    check_fields,
    check_no_secrets,
    check_redis,
    check_split_layout,
    env_vars,
    procrun_services,
)
from tests.export.projects import REPO, exported, sample_project

SPLIT = REPO / "render.split.yaml"


def test_render_split_yaml_is_procrun_export_render() -> None:
    result = exported(REPO, "render")
    assert result.stdout == SPLIT.read_text(), (
        "render.split.yaml is out of date: run `procrun export render > render.split.yaml`"
    )


def test_without_shutdown_timeout_the_worker_is_cut_to_render_s_limit(tmp_path: Path) -> None:
    for name in ("Procfile", "render.yaml", "Dockerfile", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    toml = (REPO / "procrun.toml").read_text()
    toml = re.sub(r"^(shutdown_timeout|platform_deadline) = .*$", "", toml, flags=re.MULTILINE)
    (tmp_path / "procrun.toml").write_text(toml)
    result = exported(tmp_path, "render", "-c", "worker=3")
    blueprint: dict[str, Any] = yaml.safe_load(result.stdout)
    check_fields(blueprint)
    check_split_layout(blueprint)
    check_deadlines(blueprint, tmp_path)
    check_redis(blueprint)
    check_no_secrets(blueprint, result.stdout)
    services = {s["name"]: s for s in procrun_services(blueprint)}
    worker = services["procrun-worker"]
    assert worker["numInstances"] == 3
    assert worker["maxShutdownDelaySeconds"] == 300
    assert env_vars(worker)["PROCRUN_SHUTDOWN_TIMEOUT"]["value"] == "290s"
    assert "PROCRUN_SHUTDOWN_TIMEOUT" not in env_vars(services["procrun-web"])
    assert any("worker: grace 660 s is longer than Render allows" in n for n in result.notes)


def test_without_a_blueprint_of_its_own(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    result = exported(project, "render", "--app", "sample")
    blueprint: dict[str, Any] = yaml.safe_load(result.stdout)
    check_fields(blueprint)
    check_deadlines(blueprint, project)
    check_no_secrets(blueprint, result.stdout)
    services = {s["name"]: s for s in blueprint["services"]}
    assert set(services) == {"sample-web", "sample-worker", "sample-clock-tick", "sample-api"}
    web = services["sample-web"]
    assert (web["type"], web["healthCheckPath"]) == ("web", "/health")  # its http ready probe
    assert web["preDeployCommand"] == "procrun start release"
    assert env_vars(web)["LOG_LEVEL"]["value"] == "info"  # procrun.toml's env
    assert services["sample-api"]["type"] == "web"  # it has a PORT
    assert "healthCheckPath" not in services["sample-api"]  # tcp: Render checks the port anyway
    for name in ("sample-worker", "sample-clock-tick"):
        assert services[name]["type"] == "worker"
    for service in services.values():
        assert service["runtime"] == "docker"
        assert service["dockerfilePath"] == "./Dockerfile"
        assert service["plan"] == "starter"
    assert services["sample-worker"]["dockerCommand"] == "procrun start -c worker=1 worker"
    assert services["sample-worker"]["numInstances"] == 2  # procrun.toml's count

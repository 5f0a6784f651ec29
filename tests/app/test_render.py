"""The Render Blueprints, render.yaml (one service) and render.split.yaml (one service per process
type), against the Blueprint spec's field names and against what procrun and the app need: the
start commands, a SIGKILL deadline procrun finishes before, REDIS_URL from the Key Value service,
and no secret written in the file. Parsed with PyYAML (a dev dependency; see pyproject.toml)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from procrun.project.values import parse_duration
from tests.app.dockerfile import parse_dockerfile
from tests.app.formation import PROCFILE, REPO

SINGLE = REPO / "render.yaml"
SPLIT = REPO / "render.split.yaml"
# Render's SIGKILL comes maxShutdownDelaySeconds (1-300) after its SIGTERM. procrun must be done
# before it: its own SIGKILL step at shutdown_timeout, then reaping and exiting take a moment.
RENDER_MAX_SHUTDOWN_DELAY_SECONDS = 300
PROCRUN_EXIT_MARGIN_SECONDS = 5.0
# Celery's default when procrun.toml does not set second_signal_margin for the worker.
DEFAULT_SECOND_SIGNAL_MARGIN_SECONDS = 10.0
KEY_VALUE = "keyvalue"

# Field names from Render's Blueprint YAML reference (render.com/docs/blueprint-spec): a typo is
# otherwise silently ignored or rejected only at sync time.
ROOT_FIELDS = {"services", "databases", "envVarGroups", "projects", "ungrouped", "previews"}
SERVICE_FIELDS = {
    "type",
    "name",
    "runtime",
    "plan",
    "region",
    "repo",
    "branch",
    "rootDir",
    "autoDeployTrigger",
    "buildCommand",
    "startCommand",
    "preDeployCommand",
    "dockerCommand",
    "dockerfilePath",
    "dockerContext",
    "registryCredential",
    "image",
    "healthCheckPath",
    "maxShutdownDelaySeconds",
    "numInstances",
    "scaling",
    "envVars",
    "domains",
    "disk",
    "buildFilter",
    "previews",
}
KEY_VALUE_FIELDS = {
    "type",
    "name",
    "plan",
    "previewPlan",
    "region",
    "ipAllowList",
    "maxmemoryPolicy",
}
PAID_PLANS = {"starter", "standard", "pro", "pro plus", "pro max", "pro ultra"}
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE|CREDENTIAL|AUTH", re.I)
URL_CREDENTIALS = re.compile(r"\w+://[^/\s:@]*:[^@\s]+@")


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    return document


@pytest.fixture(params=[SINGLE, SPLIT], ids=["render.yaml", "render.split.yaml"])
def blueprint(request: pytest.FixtureRequest) -> dict[str, Any]:
    path: Path = request.param
    return load(path)


def key_value(blueprint: dict[str, Any]) -> dict[str, Any]:
    services: list[dict[str, Any]] = [s for s in blueprint["services"] if s["type"] == KEY_VALUE]
    assert len(services) == 1, "one Key Value instance"
    return services[0]


def procrun_services(blueprint: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in blueprint["services"] if s["type"] != KEY_VALUE]


def image_cmd() -> str:
    (cmd,) = [i for i in parse_dockerfile((REPO / "Dockerfile").read_text()) if i.keyword == "CMD"]
    argv = cmd.exec_form()
    assert argv is not None
    return " ".join(argv)


def command(service: dict[str, Any]) -> str:
    """What the service runs: its dockerCommand, or the Dockerfile's CMD."""
    assert service["runtime"] == "docker"
    return str(service.get("dockerCommand") or image_cmd())


def procfile_names() -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_-]+):", PROCFILE.read_text(), re.MULTILINE))


def env_vars(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["key"]: item for item in service.get("envVars", [])}


def test_the_fields_are_blueprint_fields(blueprint: dict[str, Any]) -> None:
    assert set(blueprint) <= ROOT_FIELDS
    for service in blueprint["services"]:
        allowed = KEY_VALUE_FIELDS if service["type"] == KEY_VALUE else SERVICE_FIELDS
        assert set(service) <= allowed, service["name"]
        assert service["type"] in {"web", "worker", KEY_VALUE}
    names = [service["name"] for service in blueprint["services"]]
    assert len(names) == len(set(names))


def test_one_service_runs_the_whole_procfile() -> None:
    (service,) = procrun_services(load(SINGLE))
    assert service["type"] == "web"
    assert command(service) == "procrun start"
    # Its /health needs a worker: here one runs in the same container.
    assert service["healthCheckPath"] == "/health"


def test_the_split_layout_runs_one_process_type_per_service() -> None:
    services = procrun_services(load(SPLIT))
    commands = {command(service): service["type"] for service in services}
    assert commands == {
        "procrun start web": "web",
        "procrun start worker": "worker",
        "procrun start beat": "worker",
    }
    assert {c.split()[-1] for c in commands} <= procfile_names()
    # /health also needs a worker, which here is another service: no health check on it.
    (web,) = [s for s in services if s["type"] == "web"]
    assert "healthCheckPath" not in web
    for service in services:
        if service["type"] == "worker":
            assert service["plan"] in PAID_PLANS, "background workers have no free plan"


def test_procrun_finishes_before_render_s_sigkill(blueprint: dict[str, Any]) -> None:
    settings = tomllib.loads((REPO / "procrun.toml").read_text())
    deadline = parse_duration(settings["shutdown_timeout"], "shutdown_timeout")
    worker = settings.get("processes", {}).get("worker", {})
    margin = parse_duration(
        worker.get("second_signal_margin", DEFAULT_SECOND_SIGNAL_MARGIN_SECONDS), "margin"
    )
    for service in procrun_services(blueprint):
        delay = service["maxShutdownDelaySeconds"]
        assert isinstance(delay, int)
        assert 1 <= delay <= RENDER_MAX_SHUTDOWN_DELAY_SECONDS
        assert deadline + PROCRUN_EXIT_MARGIN_SECONDS <= delay, service["name"]
        # The deadline is procrun.toml's alone, so the two files are the one place to change it.
        assert "PROCRUN_SHUTDOWN_TIMEOUT" not in env_vars(service)
    # The worker gets a warm shutdown first, and its QUIT (requeue) comes before the deadline.
    assert deadline > margin > 0


def test_redis_comes_from_the_key_value_service(blueprint: dict[str, Any]) -> None:
    store = key_value(blueprint)
    # A queue must not lose messages to eviction; only Render's private network may connect.
    assert store["maxmemoryPolicy"] == "noeviction"
    assert store["ipAllowList"] == []
    for service in procrun_services(blueprint):
        variables = env_vars(service)
        assert variables["REDIS_URL"]["fromService"] == {
            "type": KEY_VALUE,
            "name": store["name"],
            "property": "connectionString",
        }
        # The broker and result backend follow REDIS_URL unless set: not here.
        assert not {"CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"} & set(variables)


def test_no_secret_is_written_in_a_blueprint(blueprint: dict[str, Any]) -> None:
    for service in procrun_services(blueprint):
        for key, item in env_vars(service).items():
            if "value" in item:
                assert not SECRET_NAME.search(key), f"{key}: use sync: false or fromService"
                assert isinstance(item["value"], str), f"{key}: quote values, Render wants strings"
                assert "://" not in item["value"], f"{key}: URLs come from fromService"
            else:
                assert {"fromService"} == set(item) - {"key"} or item.get("sync") is False, key
    for path in (SINGLE, SPLIT):
        assert not URL_CREDENTIALS.search(path.read_text()), path

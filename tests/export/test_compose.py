"""`procrun export compose`: the file passes `docker-compose config` (Debian's docker-compose 1.29,
which reads it and prints it back normalised: the values below are what Compose understood),
with no warning, and carries the project's numbers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from procrun.export.units import EXPORT_MARGIN_SECONDS
from tests.export.projects import REPO, SECRET_VALUE, exported, sample_project

IMAGE = "registry.example.com/procrun-app:1.0"
WORKER_GRACE_SECONDS = 660  # procrun.toml: grace = "11m"
COMPOSE_SECONDS = 60.0


def compose_config(file: Path) -> dict[str, Any]:
    """What docker-compose makes of the file; it must take it without a word on stderr."""
    program = shutil.which("docker-compose")
    if program is None:
        pytest.fail("docker-compose not found: install it (apt-get install docker-compose)")
    done = subprocess.run(
        [program, "--project-directory", str(file.parent), "-f", str(file), "config"],
        capture_output=True,
        text=True,
        timeout=COMPOSE_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def seconds(value: str) -> float:
    """Compose's normalised durations: `11m10s`, `40s`, `1m`."""
    total, number = 0.0, ""
    for char in value:
        if char.isdigit() or char == ".":
            number += char
        else:
            total += float(number) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
    return total


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("compose")
    exported(REPO, "compose", "--image", IMAGE, "-o", str(out))
    services: dict[str, Any] = compose_config(out / "docker-compose.yml")["services"]
    return services


def test_the_reference_app_is_one_service_per_type(reference: dict[str, Any]) -> None:
    assert set(reference) == {"web", "worker", "beat"}
    for kind, service in reference.items():
        assert service["image"] == IMAGE
        assert service["command"] == ["procrun", "start", kind]
        assert service["stop_signal"] == "SIGTERM"
        assert "init" not in service  # procrun is PID 1
        assert service["deploy"]["replicas"] == 1
        assert service["healthcheck"]["test"] == ["CMD-SHELL", f"procrun status {kind} || exit 1"]
        assert service["restart"] == "unless-stopped"


def test_compose_waits_for_the_worker_s_whole_grace(reference: dict[str, Any]) -> None:
    worker = reference["worker"]
    deadline = seconds(worker["stop_grace_period"])
    assert deadline >= WORKER_GRACE_SECONDS + EXPORT_MARGIN_SECONDS
    assert worker["environment"]["PROCRUN_SHUTDOWN_TIMEOUT"] == f"{WORKER_GRACE_SECONDS}s"
    assert seconds(reference["web"]["stop_grace_period"]) >= 30 + EXPORT_MARGIN_SECONDS
    assert reference["web"]["environment"]["PORT"] == "5000"
    assert reference["web"]["ports"][0]["target"] == 5000


def test_the_sample_s_dependencies_env_file_and_counts(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    with (project / "procrun.toml").open("a") as toml:
        toml.write('\n[processes.clock_tick]\nenv = { BANNER = "cost: $NOT_A_HOST_VARIABLE" }\n')
    with (project / ".env").open("a") as dotenv:
        dotenv.write("LOG_LEVEL=debug\n")
    result = exported(project, "compose", "--image", IMAGE, "-c", "worker=3")
    (project / "docker-compose.yml").write_text(result.stdout)
    assert SECRET_VALUE not in result.stdout
    # .env is referred to, never copied; Compose reads it (its config shows what it read).
    written = yaml.safe_load(result.stdout)["services"]
    assert all(service["env_file"] == ["./.env"] for service in written.values())
    services = compose_config(project / "docker-compose.yml")["services"]
    assert set(services) == {"release", "web", "worker", "clock_tick", "api"}
    release = services["release"]
    assert release["restart"] == "no"
    assert "healthcheck" not in release
    assert services["web"]["depends_on"] == {
        "release": {"condition": "service_completed_successfully"}
    }
    assert services["worker"]["depends_on"] == {
        "web": {"condition": "service_healthy"},
        "release": {"condition": "service_completed_successfully"},
    }
    assert services["worker"]["deploy"]["replicas"] == 3
    assert services["worker"]["command"] == ["procrun", "start", "-c", "worker=1", "worker"]
    for service in services.values():
        assert service["environment"]["API_TOKEN"] == SECRET_VALUE
    # procrun.toml's env wins over .env, in Compose as under procrun alone.
    assert services["web"]["environment"]["LOG_LEVEL"] == "info"
    # Compose interpolates `$`: procrun.toml's value reaches the container as written.
    assert services["clock_tick"]["environment"]["BANNER"] == "cost: $$NOT_A_HOST_VARIABLE"
    assert services["api"]["ports"][0]["target"] == 5400


def test_several_replicas_of_a_web_type_get_free_host_ports(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    result = exported(project, "compose", "--image", IMAGE, "-c", "web=2", "web")
    (project / "docker-compose.yml").write_text(result.stdout)
    (web,) = compose_config(project / "docker-compose.yml")["services"].values()
    assert web["deploy"]["replicas"] == 2
    assert "published" not in web["ports"][0]
    assert any("2 replicas cannot share host port 5100" in note for note in result.notes)
    # release was not asked for: nothing depends on it.
    assert "depends_on" not in web

"""`procrun export compose` run for real: the repository's image built from its Dockerfile on a
private dockerd (tests/export/dockerd.py), the exported worker service brought up with
docker-compose against a test Redis, a job started, and `docker-compose stop`: procrun, PID 1 of
the container, gives the worker its warm shutdown under the deadline the export set (the grace,
not procrun.toml's 290 s), the job finishes, and everything exits 0 long before Compose's
SIGKILL. The only change to the exported file is an override that puts the container on the
host's network, where the test Redis is (the private daemon has no bridge)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.app.jobs import task_state
from tests.app.redisserver import RedisServer
from tests.export.dockerd import Docker, private_docker
from tests.export.projects import REPO, exported

IMAGE = "procrun-app:export-test"
PROJECT = "procrunexport"
JOB_SECONDS = 6.0
DEADLINE_SECONDS = 90.0  # a hang guard: the first healthcheck runs 30 s after the start
WORKER_GRACE_SECONDS = 660  # procrun.toml: grace = "11m"


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    with private_docker() as daemon:
        daemon.build(IMAGE, REPO)
        yield daemon


def wait_until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {DEADLINE_SECONDS:g} s: {what}")


@pytest.mark.timeout(900)
def test_docker_compose_stop_gives_the_worker_its_warm_shutdown(
    docker: Docker, tmp_path: Path
) -> None:
    store = RedisServer(tmp_path)
    try:
        url = f"redis://127.0.0.1:{store.port}/0"
        out = tmp_path / "compose"
        exported(REPO, "compose", "--image", IMAGE, "-o", str(out), "worker")
        environment = {"REDIS_URL": url, "LOG_FORMAT": "text", "CELERY_CONCURRENCY": "1"}
        override = {"services": {"worker": {"network_mode": "host", "environment": environment}}}
        (out / "override.yml").write_text(json.dumps(override))  # JSON is YAML
        compose = ("docker-compose", "--project-directory", str(out), "-p", PROJECT)
        files = ("-f", str(out / "docker-compose.yml"), "-f", str(out / "override.yml"))
        up = docker.run(*compose, *files, "up", "-d")
        assert up.returncode == 0, up.stderr
        container = f"{PROJECT}_worker_1"

        def health() -> str:
            done = docker.run("docker", "inspect", "-f", "{{.State.Health.Status}}", container)
            return done.stdout.strip()

        wait_until("the worker is healthy (procrun status worker)", lambda: health() == "healthy")
        client = redis.Redis.from_url(url)
        Celery(broker=url, backend=url).send_task(
            "app.run_job", args=["stop-1", JOB_SECONDS, None], task_id="stop-1"
        )
        wait_until("the job runs", lambda: task_state(client, "stop-1") == "STARTED")

        started = time.monotonic()
        stop = docker.run(*compose, *files, "stop")
        took = time.monotonic() - started
        assert stop.returncode == 0, stop.stderr
        logs = docker.run(*compose, *files, "logs", "--no-color").stdout
        exit_code = docker.run("docker", "inspect", "-f", "{{.State.ExitCode}}", container)
        job = task_state(client, "stop-1")
        docker.run(*compose, *files, "down")
    finally:
        store.stop()
    assert exit_code.stdout.strip() == "0", logs
    # The deadline is the export's, not procrun.toml's 290 s for Render.
    assert f"shutdown.started   deadline={WORKER_GRACE_SECONDS:.1f}" in logs, logs
    assert "signal=SIGTERM target=leader" in logs
    assert "Warm shutdown" in logs
    # The job ran to its end inside the warm shutdown: no QUIT, no SIGKILL.
    assert job == "SUCCESS", logs
    assert "SIGQUIT" not in logs.replace("SIGQUIT in", "")
    assert "signal=SIGKILL" not in logs
    assert "procrun.exited     returncode=0" in logs
    assert took < WORKER_GRACE_SECONDS

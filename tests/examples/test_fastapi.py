"""The FastAPI example (examples/fastapi) end to end under real procrun, on a real redis-server,
plain and TLS: uvicorn, a Celery worker and Flower from the example's own Procfile and
procrun.toml, and the gunicorn + uvicorn-worker overlay.

- a job goes in over HTTP, the worker runs it, GET shows the result; over verified TLS too;
- `procrun status` shows web, worker and Flower ready;
- SIGTERM with a short deadline while a job runs and a slow request is in flight: the request
  gets its 200, the job goes back to the queue (QUIT) and the next start does it exactly once;
- Flower answers 401 without its basic auth and 200 with it, only on its own port, and refuses
  to start without FLOWER_BASIC_AUTH: one line, procrun gives up at once, no restart loop;
- gunicorn with UvicornWorker serves and stops gracefully, without a SIGKILL;
- the image's CMD runs it all as PID 1, as the image's user.

Formations that run side by side use Redis databases of their own, so no worker takes another's
job.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.app.dockerfile import Image
from tests.app.redisserver import RedisServer, free_port, make_ca, server_certificate
from tests.examples.fastapi_formation import (
    FLOWER_AUTH,
    FLOWER_PASSWORD,
    FLOWER_USER,
    JOB_DEADLINE_SECONDS,
    ExampleFormation,
    Reply,
    example_environment,
    flower_guard,
    flower_sees_a_worker,
    ledger_entry,
    listening_addresses,
    request,
    slow_request,
    submit,
    wait_for_job,
    with_database,
)
from tests.examples.fastapi_image import check_image, load_image, running
from tests.harness import wait_for_state

REDIS_PASSWORD = "redis-tls-pa55word-81d2"
KOMBU_INSECURE_WARNING = "Secure redis scheme specified (rediss) with no ssl options"
# The interrupted formation's deadline: the worker gets TERM, then QUIT 3 s later (half of it),
# while its job, 5 s long, is still running; Celery's cold shutdown then takes about 2 s.
SHORT_SHUTDOWN_TIMEOUT = "6s"
INTERRUPTED_JOB_SECONDS = 5.0
SLOW_REQUEST_SECONDS = 1.5


@pytest.fixture(scope="module")
def plain_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """TLS only, with a password; its certificate names localhost, issued by `ca.pem`."""
    directory = tmp_path_factory.mktemp("tls")
    files = server_certificate(directory, make_ca(directory, "issuer"))
    server = RedisServer(directory, tls=files, password=REDIS_PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def formation(
    plain_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExampleFormation]:
    env = example_environment(with_database(plain_redis.url, 0))
    with ExampleFormation(tmp_path_factory.mktemp("procrun"), env) as procrun:
        procrun.wait_until_ready("web.1", "worker.1", "flower.1")
        yield procrun


# --- the formation on plain Redis --------------------------------------------------------------


def test_status_shows_web_worker_and_flower_ready(formation: ExampleFormation) -> None:
    status = formation.client("status", "--json")
    out, err = status.communicate(timeout=JOB_DEADLINE_SECONDS)
    assert status.returncode == 0, (out, err)
    rows = {row["name"]: row for row in json.loads(out)["processes"]}
    assert sorted(rows) == ["flower.1", "web.1", "worker.1"]
    assert all(row["state"] == "RUNNING" and row["ready"] for row in rows.values()), rows


def test_a_job_round_trip(formation: ExampleFormation) -> None:
    job_id = submit(formation.base_url, 0.2)
    job = wait_for_job(formation.base_url, job_id, "SUCCESS")
    assert job["result"] == {"job_id": job_id, "run": 1, "done": 1}
    assert (job["runs"], job["done"], job["seconds"]) == (1, 1, 0.2)
    formation.wait_for_line(rf"worker\.1 .*Task service\.run_job\[{job_id}\] succeeded")


def test_bad_requests_are_4xx(formation: ExampleFormation) -> None:
    assert request("GET", f"{formation.base_url}/jobs/never-submitted").status == 404
    assert request("POST", f"{formation.base_url}/jobs", {"seconds": 10_000}).status == 422
    assert request("GET", f"{formation.base_url}/slow?seconds=-1").status == 422


def test_flower_asks_for_basic_auth(formation: ExampleFormation) -> None:
    anonymous = request("GET", f"{formation.flower_url}/")
    assert anonymous.status == 401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="flower"'
    assert request("GET", f"{formation.flower_url}/", auth=(FLOWER_USER, "wrong")).status == 401
    assert request("GET", f"{formation.flower_url}/", auth=FLOWER_AUTH).status == 200
    # The one page Flower serves to anyone: procrun's readiness probe.
    assert request("GET", f"{formation.flower_url}/healthcheck").text == "OK"


def test_flower_sees_the_worker_through_the_broker(formation: ExampleFormation) -> None:
    flower_sees_a_worker(formation.flower_url)


def test_flower_is_only_on_its_own_port_on_loopback(formation: ExampleFormation) -> None:
    for path in ("/flower", "/api/workers", "/dashboard"):
        assert request("GET", f"{formation.base_url}{path}").status == 404
    assert request("GET", f"{formation.flower_url}/api/workers").status == 401
    assert listening_addresses(formation.flower_port) == {"127.0.0.1"}


def test_the_formation_stops_cleanly_and_never_prints_the_flower_password(
    formation: ExampleFormation,
) -> None:
    formation.stop_cleanly(FLOWER_PASSWORD)


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_formation(
    tls_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExampleFormation]:
    assert tls_redis.tls is not None
    env = example_environment(tls_redis.url, REDIS_CA_CERTS=str(tls_redis.tls.ca))
    with ExampleFormation(tmp_path_factory.mktemp("procrun-tls"), env) as procrun:
        procrun.wait_until_ready("web.1", "worker.1", "flower.1")
        yield procrun


def test_a_job_round_trip_over_verified_tls(tls_formation: ExampleFormation) -> None:
    job_id = submit(tls_formation.base_url, 0)
    job = wait_for_job(tls_formation.base_url, job_id, "SUCCESS")
    assert (job["runs"], job["done"]) == (1, 1)
    tls_formation.wait_for_line(r"worker\.1 .*Connected to rediss://:\*+@localhost")
    tls_formation.wait_for_line(r"flower\.1 .*Connected to rediss://:\*+@localhost")
    flower_sees_a_worker(tls_formation.flower_url)


def test_tls_output_holds_no_password_and_no_insecure_warning(
    tls_formation: ExampleFormation,
) -> None:
    tls_formation.stop_cleanly(REDIS_PASSWORD, FLOWER_PASSWORD, KOMBU_INSECURE_WARNING)


def test_a_wrong_ca_fails_the_worker_clearly(tls_redis: RedisServer, tmp_path: Path) -> None:
    make_ca(tmp_path, "stranger")
    env = example_environment(tls_redis.url, REDIS_CA_CERTS=str(tmp_path / "stranger.pem"))
    with ExampleFormation(tmp_path, env, "worker") as procrun:
        error = procrun.wait_for_line(r"worker\.1 .*Cannot connect to rediss://:\*+@localhost")
        assert "certificate verify failed" in error.string
        procrun.stop_cleanly(REDIS_PASSWORD)


# --- SIGTERM while a job runs and a request is in flight ----------------------------------------


@dataclass(frozen=True)
class Interrupted:
    output: str
    job_id: str
    slow_replies: list[Reply]
    redis_url: str


@pytest.fixture(scope="module")
def interrupted(plain_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Interrupted:
    """web and worker with a 6 s shutdown deadline, stopped while a 5 s job runs and a 1.5 s
    request is in flight: procrun exits 0, with no SIGKILL."""
    url = with_database(plain_redis.url, 2)
    directory = tmp_path_factory.mktemp("procrun-interrupted")
    with ExampleFormation(
        directory,
        example_environment(url),
        "web",
        "worker",
        shutdown_timeout=SHORT_SHUTDOWN_TIMEOUT,
    ) as procrun:
        procrun.wait_until_ready("web.1", "worker.1")
        job_id = submit(procrun.base_url, INTERRUPTED_JOB_SECONDS)
        procrun.wait_for_line(rf"worker\.1 .*job {job_id}: run 1 started")
        replies = slow_request(procrun, SLOW_REQUEST_SECONDS)
        output = procrun.stop_cleanly()
    return Interrupted(output, job_id, replies(), url)


def test_a_request_in_flight_at_sigterm_gets_its_200(interrupted: Interrupted) -> None:
    (reply,) = interrupted.slow_replies
    assert reply.status == 200, reply
    assert reply.json() == {"slept": SLOW_REQUEST_SECONDS}


def test_the_running_job_goes_back_to_the_queue_at_quit(interrupted: Interrupted) -> None:
    assert re.search(r"signal\.sent .*process=worker\.1 signal=SIGQUIT", interrupted.output)
    assert "Restoring 1 unacknowledged message(s)" in interrupted.output


def test_the_job_is_requeued_and_done_exactly_once_by_the_next_start(
    interrupted: Interrupted, tmp_path: Path
) -> None:
    with redis.Redis.from_url(interrupted.redis_url, decode_responses=True) as client:
        before = ledger_entry(client, interrupted.job_id)
        assert (before["runs"], before.get("done")) == ("1", None)
        with ExampleFormation(
            tmp_path, example_environment(interrupted.redis_url), "worker"
        ) as new:
            new.wait_for_line(rf"worker\.1 .*job {interrupted.job_id}: run 2 finished", 30)

            def settled() -> bool:  # acknowledged, and nothing else left to run
                return bool(client.hlen("unacked") == 0 and client.llen("celery") == 0)

            wait_for_state(settled, "the queue empty and every message acknowledged")
            new.stop_cleanly()
        after = ledger_entry(client, interrupted.job_id)
    assert (after["runs"], after["done"]) == ("2", "1")


# --- the gunicorn + uvicorn-worker variant ------------------------------------------------------


def test_the_gunicorn_variant_serves_and_stops_gracefully(
    plain_redis: RedisServer, tmp_path: Path
) -> None:
    env = example_environment(with_database(plain_redis.url, 3))
    with ExampleFormation(tmp_path, env, "web", gunicorn=True) as procrun:
        procrun.wait_until_ready("web.1")  # gunicorn's sd_notify READY=1
        procrun.wait_for_line(r"web\.1 .*Booting worker with pid")
        assert request("GET", f"{procrun.base_url}/health").json() == {"redis": True}
        replies = slow_request(procrun, SLOW_REQUEST_SECONDS)
        output = procrun.stop_cleanly()
    assert [reply.status for reply in replies()] == [200]
    assert re.search(r"web\.1 .*Using worker: uvicorn_worker\.UvicornWorker", output), output
    assert re.search(r"web\.1 .*Handling signal: term", output), output
    assert re.search(r"web\.1 .*Shutting down: Master", output), output


# --- bad settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("basic_auth", "problem"),
    [
        (None, "FLOWER_BASIC_AUTH is not set"),
        ("", "FLOWER_BASIC_AUTH is not set"),
        ("ops", "entry 1 of FLOWER_BASIC_AUTH is not user:password"),
        ("ops:", "entry 1 of FLOWER_BASIC_AUTH is not user:password"),
        (":pw", "entry 1 of FLOWER_BASIC_AUTH is not user:password"),
        ("ops:pw,:pw2", "entry 2 of FLOWER_BASIC_AUTH is not user:password"),
        ("ops:pw", None),
        ("ops:p:w,dev:pw2", None),  # Flower compares "user:password" whole: a colon may follow
    ],
)
def test_what_flower_s_guard_accepts(basic_auth: str | None, problem: str | None) -> None:
    assert flower_guard().basic_auth_problem(basic_auth) == problem


@pytest.mark.parametrize("basic_auth", ["", "ops:pw,:pw2"])
def test_flower_refuses_to_start_without_basic_auth(basic_auth: str, tmp_path: Path) -> None:
    env = example_environment("redis://127.0.0.1:1/0", FLOWER_BASIC_AUTH=basic_auth)
    with ExampleFormation(tmp_path, env, "flower") as procrun:
        refusal = procrun.wait_for_line(r"flower\.1 +\| flower: refusing to start: (.*)")
        assert "set FLOWER_BASIC_AUTH=user:password" in refusal.group(1)
        procrun.wait_for_line(r"process\.gave_up .*process=flower\.1 .*EX_CONFIG")
        assert procrun.wait() == 78
        output = procrun.output()
    assert output.count("process.spawned") == 1, output  # no restart loop
    assert "Traceback" not in output
    if basic_auth:
        assert basic_auth not in refusal.group(1)  # never quoted


def test_a_bad_setting_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    env = example_environment("http://127.0.0.1:1/0")
    with ExampleFormation(tmp_path, env, "web", "worker") as procrun:
        for instance in ("web.1", "worker.1"):
            procrun.wait_for_line(
                rf"{instance} +\| service: REDIS_URL: expected redis:// or rediss://, got http://"
            )
        procrun.stop_cleanly()


# --- the image (built from the repository root) -------------------------------------------------


@pytest.fixture(scope="module")
def image() -> Image:
    return load_image()


def test_the_image_holds_what_the_procfile_runs_and_no_secret(image: Image) -> None:
    check_image(image)


@pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace and a chroot need root; CI is root")
def test_the_image_runs_the_formation_as_pid_1_as_its_user(
    image: Image, plain_redis: RedisServer
) -> None:
    port, flower_port = free_port(), free_port()
    platform = {  # what a platform sets at run time
        "PORT": str(port),
        "FLOWER_PORT": str(flower_port),
        "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH),
        "REDIS_URL": with_database(plain_redis.url, 4),
        "CELERY_CONCURRENCY": "1",
    }
    with running(image, platform) as container:
        wait_for_job(f"http://127.0.0.1:{port}", submit(f"http://127.0.0.1:{port}", 0), "SUCCESS")
        flower = f"http://127.0.0.1:{flower_port}/"
        assert request("GET", flower).status == 401
        assert request("GET", flower, auth=FLOWER_AUTH).status == 200
        assert listening_addresses(flower_port) == {"0.0.0.0"}  # the image's FLOWER_ADDRESS
        assert container.healthcheck(image) == 0
        output = container.stop()
    assert "Permission denied" not in output
    assert "superuser privileges" not in output  # Celery's warning when run as root
    assert FLOWER_PASSWORD not in output

"""The repository's Procfile under real procrun: gunicorn, a Celery worker and two Beats (as in two
instances during a deploy) on a test Redis. A job goes in over HTTP, the worker runs it, GET shows
the result and the effect, recorded once; Beat ticks once a second, never twice."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator

import pytest

from app.store import TICKS_KEY
from tests.app.formation import REPO, AppFormation, app_environment, http, post_json
from tests.app.redisserver import RedisServer
from tests.harness import wait_for_state

JOB_DEADLINE_SECONDS = 20.0


@pytest.fixture(scope="module")
def formation(
    plain_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppFormation]:
    env = app_environment(plain_redis.url)
    with AppFormation(tmp_path_factory.mktemp("procrun"), env, options=("-c", "beat=2")) as procrun:
        procrun.wait_until_web_listens()
        procrun.wait_until_worker_ready()
        procrun.wait_for_line(r"beat\.\d .*beat: Acquired lock", 30)
        yield procrun
        assert procrun.stop() == 0, procrun.transcript()


def wait_for_job(formation: AppFormation, job_id: str, state: str) -> dict[str, object]:
    seen: list[dict[str, object]] = []

    def reached() -> bool:
        seen.append(http("GET", f"{formation.base_url}/jobs/{job_id}").body)
        return seen[-1]["state"] == state

    wait_for_state(reached, f"job {job_id} in state {state}", JOB_DEADLINE_SECONDS)
    return seen[-1]


def test_health_is_ok_with_redis_and_a_worker(formation: AppFormation) -> None:
    reply = http("GET", f"{formation.base_url}/health")
    assert reply.status == 200, reply.body
    assert reply.body["redis"] == {"ok": True}
    assert reply.body["workers"]["ok"] is True


def test_a_job_round_trip_records_its_effect_once(
    formation: AppFormation, plain_redis: RedisServer
) -> None:
    submitted = post_json(
        f"{formation.base_url}/jobs", {"seconds": 0.2, "payload": {"n": 42}, "job_id": "rt-1"}
    )
    assert submitted.status == 202
    assert submitted.body == {"id": "rt-1"}
    assert submitted.headers["Location"] == "/jobs/rt-1"
    job = wait_for_job(formation, "rt-1", "SUCCESS")
    assert job["result"] == {"job_id": "rt-1", "recorded": True, "executions": 1}
    assert job["effect_recorded"] is True
    assert job["executions"] == 1
    effect = job["effect"]
    assert isinstance(effect, dict)
    assert effect["payload"] == {"n": 42}
    assert effect["task_id"] == "rt-1"
    # Submitting the same id again is answered from the registry: no second run.
    again = post_json(f"{formation.base_url}/jobs", {"seconds": 0.2, "job_id": "rt-1"})
    assert again.status == 200
    assert again.body == {"id": "rt-1", "duplicate": True}
    with plain_redis.client() as client:
        assert client.get("executions:rt-1") == "1"
    formation.wait_for_line(r"worker\.1 .*Task app\.run_job\[rt-1\] succeeded")


def test_bad_requests_over_http_are_4xx_json(formation: AppFormation) -> None:
    base = formation.base_url
    not_found = http("GET", f"{base}/nowhere")
    assert (not_found.status, not_found.body) == (404, {"error": "no such resource: /nowhere"})
    wrong_method = http("PUT", f"{base}/jobs", b"{}", {"Content-Type": "application/json"})
    assert wrong_method.status == 405
    assert wrong_method.headers["Allow"] == "POST"
    bad_json = http("POST", f"{base}/jobs", b"{nope", {"Content-Type": "application/json"})
    assert bad_json.status == 400
    assert bad_json.body["error"].startswith("invalid JSON")
    wrong_type = post_json(f"{base}/jobs", {"seconds": "ten"})
    assert wrong_type.status == 422
    assert wrong_type.body["field"] == "seconds"
    assert http("GET", f"{base}/jobs/never-submitted").status == 404
    formation.wait_for_line(r'web\.1 .*"path": "/nowhere", "status": 404')


def ticks(plain_redis: RedisServer) -> list[tuple[float, str]]:
    """(time, task id) of every tick run so far."""
    with plain_redis.client() as client:
        entries: list[str] = client.lrange(TICKS_KEY, 0, -1)
    return [(float(at), task_id) for at, task_id in (entry.split() for entry in entries)]


def test_beat_ticks_once_a_second_even_with_two_beats(
    formation: AppFormation, plain_redis: RedisServer
) -> None:
    start = len(ticks(plain_redis))
    wait_for_state(lambda: len(ticks(plain_redis)) >= start + 6, "six more ticks", timeout=20)
    recorded = ticks(plain_redis)[start:]
    times = [at for at, _ in recorded]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Two Beats sending would give about two ticks a second, half of them close together.
    assert min(gaps) > 0.3, gaps
    assert 0.8 < sum(gaps) / len(gaps) < 1.3, gaps
    # Exactly one Beat holds the lock and sends; the other waits for it, alive. Reading up to
    # the worker's line for the last tick reads every Beat line sent before it.
    formation.wait_for_line(rf"worker\.1 .*Task app\.tick\[{recorded[-1][1]}\] succeeded")
    transcript = formation.transcript()
    assert len(re.findall(r"beat: Acquired lock", transcript)) == 1
    senders = set(re.findall(r"^(beat\.\d) .*Sending due task tick", transcript, re.MULTILINE))
    assert len(senders) == 1, senders
    assert [line for line in transcript.splitlines() if "process.restarting" in line] == []


def test_no_schedule_file_is_written() -> None:
    """RedBeat keeps the schedule in Redis: nothing for a read-only image to refuse."""
    assert list(REPO.glob("celerybeat-schedule*")) == []


def test_app_lines_are_json_and_requests_are_logged(formation: AppFormation) -> None:
    """JSON lines in containers (Celery's start-up banners aside), one event per request."""
    http("GET", f"{formation.base_url}/health")
    access = formation.wait_for_line(r'web\.1 +\| (\{.*"path": "/health".*\})').group(1)
    event = json.loads(access)
    assert (event["event"], event["method"], event["status"]) == ("http.request", "GET", 200)
    events = [
        json.loads(text)
        for line in formation.transcript().splitlines()
        if (text := line.partition(" | ")[2]).startswith("{")
    ]
    configured = {e["role"] for e in events if e["event"] == "app.configured"}
    assert configured == {"web", "worker", "beat"}

"""The WSGI app in process, on a real Redis: routing, input validation and its 4xx answers, the
idempotent POST, and /health when nothing answers. The same app behind gunicorn and procrun is
exercised in test_roundtrip.py."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from kombu.exceptions import OperationalError

from app.settings import load_settings
from app.store import JobStore, connect
from app.tasks import create_celery_app
from app.web import MAX_BODY_BYTES, JobsApp
from tests.app.formation import HttpReply
from tests.app.redisserver import RedisServer, free_port


@dataclass
class FakeCelery:
    """Records what the web app sends; the broker can be made to fail."""

    sent: list[tuple[str, list[Any], str]] = field(default_factory=list)
    broker_down: bool = False

    def send_task(self, name: str, args: list[Any], task_id: str) -> None:
        if self.broker_down:
            raise OperationalError("Error 111 connecting to redis://:***@broker:6379/0")
        self.sent.append((name, args, task_id))

    def AsyncResult(self, job_id: str) -> Any:
        return type("Result", (), {"state": "PENDING", "result": None})()


def call(
    app: JobsApp, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
) -> HttpReply:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        started.append((status, headers))
        return lambda _: None

    chunks = app(environ, start_response)
    ((status, headers),) = started
    return HttpReply(int(status.split()[0]), dict(headers), json.loads(b"".join(chunks)))


@pytest.fixture
def celery() -> FakeCelery:
    return FakeCelery()


@pytest.fixture
def app(plain_redis: RedisServer, celery: FakeCelery) -> Iterator[JobsApp]:
    with plain_redis.client() as client:
        client.flushdb()
    settings = load_settings({"REDIS_URL": plain_redis.url})
    store = JobStore(connect(settings))
    yield JobsApp(celery, store, max_job_seconds=600)
    store.client.close()


def submit(app: JobsApp, document: object) -> HttpReply:
    return call(app, "POST", "/jobs", json.dumps(document).encode())


def test_submit_queues_the_job_and_points_at_it(app: JobsApp, celery: FakeCelery) -> None:
    reply = submit(app, {"seconds": 1.5, "payload": {"to": ["a", "b"]}, "job_id": "job-1"})
    assert reply.status == 202
    assert reply.body == {"id": "job-1"}
    assert reply.headers["Location"] == "/jobs/job-1"
    assert celery.sent == [("app.run_job", ["job-1", 1.5, {"to": ["a", "b"]}], "job-1")]


def test_submit_without_an_id_gets_a_fresh_one_and_payload_is_optional(
    app: JobsApp, celery: FakeCelery
) -> None:
    first, second = submit(app, {"seconds": 0}), submit(app, {"seconds": 600})
    assert first.status == second.status == 202
    assert first.body["id"] != second.body["id"]
    assert [args for _, args, _ in celery.sent] == [
        [first.body["id"], 0, None],
        [second.body["id"], 600, None],
    ]


def test_resubmitting_a_job_id_queues_nothing(app: JobsApp, celery: FakeCelery) -> None:
    assert submit(app, {"seconds": 1, "job_id": "once"}).status == 202
    again = submit(app, {"seconds": 1, "job_id": "once"})
    assert again.status == 200
    assert again.body == {"id": "once", "duplicate": True}
    assert len(celery.sent) == 1


def test_a_job_the_broker_refused_can_be_submitted_again(app: JobsApp, celery: FakeCelery) -> None:
    celery.broker_down = True
    refused = submit(app, {"seconds": 1, "job_id": "retry-me"})
    assert refused.status == 503
    assert refused.body["error"].startswith("could not queue the job: OperationalError")
    assert call(app, "GET", "/jobs/retry-me").status == 404
    celery.broker_down = False
    assert submit(app, {"seconds": 1, "job_id": "retry-me"}).status == 202


def test_get_job_shows_state_and_effect(app: JobsApp) -> None:
    submit(app, {"seconds": 2, "payload": [1], "job_id": "j"})
    reply = call(app, "GET", "/jobs/j")
    assert reply.status == 200
    assert reply.body == {
        "id": "j",
        "state": "PENDING",
        "submitted": {"seconds": 2, "payload": [1]},
        "effect_recorded": False,
        "effect": None,
        "executions": 0,
    }
    recorded, executions = app.store.record_effect("j", {"done": True})
    assert (recorded, executions) == (True, 1)
    assert app.store.record_effect("j", {"done": "again"}) == (False, 2)
    reply = call(app, "GET", "/jobs/j")
    assert reply.body["effect"] == {"done": True}
    assert reply.body["executions"] == 2


@pytest.mark.parametrize("path", ["/jobs/unknown", "/jobs/..", "/jobs/a%20b", "/jobs/" + "x" * 65])
def test_unknown_jobs_are_404(app: JobsApp, path: str) -> None:
    reply = call(app, "GET", path)
    assert reply.status == 404
    assert "no job with id" in reply.body["error"]


@pytest.mark.parametrize("path", ["/", "/job", "/jobs/a/b", "/health/"])
def test_unknown_routes_are_404(app: JobsApp, path: str) -> None:
    reply = call(app, "GET", path)
    assert reply.status == 404
    assert reply.body == {"error": f"no such resource: {path}"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/jobs", "POST"), ("POST", "/health", "GET"), ("DELETE", "/jobs/j", "GET")],
)
def test_wrong_methods_are_405_with_allow(
    app: JobsApp, method: str, path: str, allowed: str
) -> None:
    reply = call(app, method, path, b"{}")
    assert reply.status == 405
    assert reply.headers["Allow"] == allowed
    assert reply.body["allowed"] == [allowed]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"", "application/json", 400, "expected a JSON body"),
        (b"{", "application/json", 400, "invalid JSON"),
        (b'{"seconds": NaN}', "application/json", 400, "invalid JSON: NaN is not JSON"),
        (b"\xff\xfe", "application/json", 400, "invalid JSON"),
        (b"seconds=1", "application/x-www-form-urlencoded", 415, "expected Content-Type"),
        (b"[1]", "application/json", 422, "expected a JSON object, got an array"),
        (b"{}", "application/json", 422, "seconds must be a number from 0 to 600"),
        (b'{"seconds": "5"}', "application/json; charset=utf-8", 422, "got a string"),
        (b'{"seconds": true}', "application/json", 422, "got a boolean true"),
        (b'{"seconds": -1}', "application/json", 422, "seconds must be"),
        (b'{"seconds": 601}', "application/json", 422, "seconds must be"),
        (b'{"seconds": 1e400}', "application/json", 422, "seconds must be"),
        (b'{"seconds": 1, "priority": 9}', "application/json", 422, "unknown field(s) priority"),
        (b'{"seconds": 1, "job_id": 7}', "application/json", 422, "job_id must be"),
        (b'{"seconds": 1, "job_id": "a/b"}', "application/json", 422, "job_id must be"),
        (b'{"seconds": 1, "job_id": ""}', "application/json", 422, "job_id must be"),
    ],
)
def test_bad_submissions_are_4xx_json(
    app: JobsApp, celery: FakeCelery, body: bytes, content_type: str, status: int, message: str
) -> None:
    reply = call(app, "POST", "/jobs", body, content_type)
    assert reply.status == status, reply.body
    assert message in reply.body["error"]
    assert reply.headers["Content-Type"] == "application/json"
    assert celery.sent == []


def test_bodies_over_the_limit_are_413(app: JobsApp) -> None:
    body = json.dumps({"seconds": 1, "payload": "x" * MAX_BODY_BYTES}).encode()
    reply = call(app, "POST", "/jobs", body)
    assert reply.status == 413


def test_health_is_503_when_no_worker_answers(plain_redis: RedisServer) -> None:
    settings = load_settings({"REDIS_URL": plain_redis.url})
    store = JobStore(connect(settings))
    app = JobsApp(create_celery_app(settings), store, max_job_seconds=600)
    reply = call(app, "GET", "/health")
    assert reply.status == 503
    assert reply.body == {
        "ok": False,
        "redis": {"ok": True},
        "workers": {"ok": False, "error": "no worker answered a ping within 1 s"},
    }
    store.client.close()


def test_health_fails_fast_when_redis_is_down() -> None:
    settings = load_settings({"REDIS_URL": f"redis://:pw-of-the-test@127.0.0.1:{free_port()}/0"})
    store = JobStore(connect(settings))
    app = JobsApp(create_celery_app(settings), store, max_job_seconds=600)
    started = time.monotonic()
    reply = call(app, "GET", "/health")
    assert time.monotonic() - started < 3, "a health check must answer within a platform's wait"
    assert reply.status == 503
    assert "Connection refused" in reply.body["redis"]["error"]
    assert "Connection refused" in reply.body["workers"]["error"]
    assert "pw-of-the-test" not in json.dumps(reply.body)
    store.client.close()

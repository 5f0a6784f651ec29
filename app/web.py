"""The web process: a plain WSGI app, served by gunicorn (`app.web:application`).

  GET  /health      200 when Redis answers PING and a Celery worker answers a ping, else 503
  POST /jobs        {"seconds": 0..600, "payload": any JSON, "job_id": optional} -> 202 {"id"}
  GET  /jobs/<id>   the job's state and result (Celery's result backend) and its effect (Redis)

JSON in and out; every error is a JSON object {"error": ...} with a 4xx or 5xx status.
A job id given by the client makes the POST idempotent: submitting it again queues nothing and
answers 200 with the same id, so a client may retry a POST whose answer it did not get.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeGuard
from wsgiref.types import StartResponse, WSGIEnvironment

import redis
import structlog

from app.settings import redact
from app.store import JobStore, connect

MAX_BODY_BYTES = 64 * 1024
WORKER_PING_TIMEOUT_SECONDS = 1.0
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_JOB_PATH = re.compile(r"/jobs/(?P<job_id>[^/]+)")
_SUBMIT_FIELDS = ("seconds", "payload", "job_id")

logger = structlog.get_logger("app.web")


@dataclass(frozen=True)
class Response:
    status: HTTPStatus
    body: dict[str, Any]
    headers: list[tuple[str, str]] = field(default_factory=list)


class HttpError(Exception):
    def __init__(self, status: HTTPStatus, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": message, **details}
        self.headers: list[tuple[str, str]] = []


Handler = Callable[[WSGIEnvironment, dict[str, str]], Response]


class JobsApp:
    """The WSGI callable. `celery_app` sends tasks and pings workers; `store` is the app's data."""

    def __init__(self, celery_app: Any, store: JobStore, max_job_seconds: float) -> None:
        self.celery = celery_app
        self.store = store
        self.max_job_seconds = max_job_seconds

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self._dispatch(environ)
        except HttpError as exc:
            response = Response(exc.status, exc.body, exc.headers)
        except Exception:
            logger.exception("http.failed", path=environ.get("PATH_INFO"))
            response = Response(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})
        body = json.dumps(response.body).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *response.headers,
        ]
        start_response(f"{response.status.value} {response.status.phrase}", headers)
        return [body]

    def _dispatch(self, environ: WSGIEnvironment) -> Response:
        path: str = environ.get("PATH_INFO") or "/"
        method: str = environ["REQUEST_METHOD"]
        handlers: dict[str, Handler]
        params: dict[str, str] = {}
        if path == "/health":
            handlers = {"GET": self.health}
        elif path == "/jobs":
            handlers = {"POST": self.submit}
        elif match := _JOB_PATH.fullmatch(path):
            handlers, params = {"GET": self.job}, match.groupdict()
        else:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no such resource: {path}")
        handler = handlers.get(method)
        if handler is None:
            allowed = ", ".join(sorted(handlers))
            error = HttpError(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{method} is not allowed on {path}; use {allowed}",
                allowed=sorted(handlers),
            )
            error.headers.append(("Allow", allowed))
            raise error
        return handler(environ, params)

    def health(self, _: WSGIEnvironment, __: dict[str, str]) -> Response:
        checks = {"redis": self._check_redis(), "workers": self._check_workers()}
        healthy = all(check["ok"] for check in checks.values())
        status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
        return Response(status, {"ok": healthy, **checks})

    def _check_redis(self) -> dict[str, Any]:
        try:
            self.store.ping()
        except redis.RedisError as exc:
            return {"ok": False, "error": _describe(exc)}
        return {"ok": True}

    def _check_workers(self) -> dict[str, Any]:
        try:
            with self.celery.connection_or_acquire() as connection:
                # Fail at once when the broker is down: the ping's own publish would retry for
                # several seconds, longer than a platform's health check waits.
                connection.ensure_connection(max_retries=0)
                # limit=1: answer as soon as one worker replies instead of waiting out the timeout.
                replies = self.celery.control.ping(
                    timeout=WORKER_PING_TIMEOUT_SECONDS, limit=1, connection=connection
                )
        except Exception as exc:  # kombu and redis-py raise several families of errors
            return {"ok": False, "error": _describe(exc)}
        workers = sorted(name for reply in replies for name in reply)
        if not workers:
            return {
                "ok": False,
                "error": f"no worker answered a ping within {WORKER_PING_TIMEOUT_SECONDS:g} s",
            }
        return {"ok": True, "workers": workers}

    def submit(self, environ: WSGIEnvironment, _: dict[str, str]) -> Response:
        body = _read_json(environ)
        job_id, seconds, payload = self._validate(body)
        location = [("Location", f"/jobs/{job_id}")]
        try:
            if not self.store.register(job_id, {"seconds": seconds, "payload": payload}):
                return Response(HTTPStatus.OK, {"id": job_id, "duplicate": True}, location)
        except redis.RedisError as exc:
            raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, _describe(exc)) from None
        try:
            self.celery.send_task("app.run_job", args=[job_id, seconds, payload], task_id=job_id)
        except Exception as exc:  # nothing was queued: let a retry of this POST queue it
            with contextlib.suppress(redis.RedisError):
                self.store.forget(job_id)
            raise HttpError(
                HTTPStatus.SERVICE_UNAVAILABLE, f"could not queue the job: {_describe(exc)}"
            ) from None
        logger.info("job.submitted", job_id=job_id, seconds=seconds)
        return Response(HTTPStatus.ACCEPTED, {"id": job_id}, location)

    def _validate(self, body: object) -> tuple[str, float, Any]:
        if not isinstance(body, dict):
            raise HttpError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"expected a JSON object, got {_json_type(body)}",
            )
        if unknown := sorted(set(body) - set(_SUBMIT_FIELDS)):
            raise HttpError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"unknown field(s) {', '.join(unknown)}; expected {', '.join(_SUBMIT_FIELDS)}",
            )
        seconds = body.get("seconds")
        if not _is_number(seconds) or not 0 <= seconds <= self.max_job_seconds:
            raise HttpError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"seconds must be a number from 0 to {self.max_job_seconds:g}, "
                f"got {_json_type(seconds)} {json.dumps(seconds)[:40]}",
                field="seconds",
            )
        job_id = body.get("job_id")
        if job_id is None:
            job_id = uuid.uuid4().hex
        elif not isinstance(job_id, str) or not JOB_ID_PATTERN.fullmatch(job_id):
            raise HttpError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "job_id must be a string of 1-64 letters, digits, '_', '-' or '.', "
                "starting with a letter or digit",
                field="job_id",
            )
        return job_id, seconds, body.get("payload")

    def job(self, _: WSGIEnvironment, params: dict[str, str]) -> Response:
        job_id = params["job_id"]
        try:
            submitted = self.store.submission(job_id) if JOB_ID_PATTERN.fullmatch(job_id) else None
            if submitted is None:
                raise HttpError(HTTPStatus.NOT_FOUND, f"no job with id {job_id!r}")
            effect = self.store.effect(job_id)
            executions = self.store.executions(job_id)
            result = self.celery.AsyncResult(job_id)
            state: str = result.state
        except redis.RedisError as exc:
            raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, _describe(exc)) from None
        body: dict[str, Any] = {
            "id": job_id,
            "state": state,
            "submitted": submitted,
            "effect_recorded": effect is not None,
            "effect": effect,
            "executions": executions,
        }
        if state == "SUCCESS":
            body["result"] = result.result
        elif state == "FAILURE":
            body["error"] = _describe(result.result)
        return Response(HTTPStatus.OK, body)


def _read_json(environ: WSGIEnvironment) -> object:
    content_type = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
    if content_type and content_type != "application/json":
        raise HttpError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"expected Content-Type application/json, got {content_type}",
        )
    raw = _read_body(environ)
    if not raw.strip():
        raise HttpError(HTTPStatus.BAD_REQUEST, "expected a JSON body, got an empty one")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise HttpError(HTTPStatus.BAD_REQUEST, f"invalid JSON: {exc}") from None


def _read_body(environ: WSGIEnvironment) -> bytes:
    declared = environ.get("CONTENT_LENGTH")
    if declared and not declared.isdigit():
        raise HttpError(HTTPStatus.BAD_REQUEST, f"invalid Content-Length {declared!r}")
    too_large = HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes")
    if declared and int(declared) > MAX_BODY_BYTES:
        raise too_large
    # Without a length (a chunked body), read one byte past the limit to notice an excess.
    raw: bytes = environ["wsgi.input"].read(int(declared) if declared else MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise too_large
    return raw


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case _:
            return "an object"


def _describe(exc: BaseException | object) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


def create_application() -> JobsApp:
    """The app gunicorn serves (`app.web:create_application()`): called in each web worker, so
    the Celery app and the Redis clients are made after the fork, and importing this module
    connects to nothing."""
    from app import tasks  # loads the settings and the Celery app

    return JobsApp(tasks.celery_app, JobStore(connect(tasks.settings)), tasks.MAX_JOB_SECONDS)

"""The Celery app (`celery -A app.tasks worker|beat`), its settings and its two tasks.

Durability: a task's message is acknowledged only after the task ran (acks_late), and requeued if
the process running it dies (reject_on_worker_lost), so a job is never lost, only possibly run
twice; run_job makes the second run harmless (see app.store). Each worker process reserves one
message at a time (prefetch 1) so long jobs do not sit behind each other in one process while
another idles.

Time limits and the visibility timeout go together: Redis hands an unacknowledged message to
another worker once it is older than the visibility timeout, so that timeout must exceed the
longest a task may run (the hard time limit), or a slow job would be run twice concurrently.

A Redis restart under running jobs: they go on, wait for Redis to record their effect, and
acknowledge their messages once it is back, so each runs to completion once (app.consumer says
why this works on the Redis transport and what the worker changes for it).
"""

from __future__ import annotations

import functools
import socket
import time
from typing import Any

import redis
from celery import Celery, signals
from celery.exceptions import Reject
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from app.logsetup import configure_logging, log_startup
from app.settings import (
    HEALTH_CHECK_INTERVAL_SECONDS,
    SOCKET_CONNECT_TIMEOUT_SECONDS,
    SOCKET_TIMEOUT_SECONDS,
    Settings,
    load_settings,
)
from app.store import JobStore, connect

MAX_JOB_SECONDS = 600
TASK_SOFT_TIME_LIMIT_SECONDS = MAX_JOB_SECONDS + 30  # SoftTimeLimitExceeded inside the task
TASK_TIME_LIMIT_SECONDS = MAX_JOB_SECONDS + 60  # the pool process is killed
VISIBILITY_TIMEOUT_SECONDS = TASK_TIME_LIMIT_SECONDS + 60
# Beat wakes at least this often (beat_max_loop_interval; Celery silently ignores the name
# beat_max_interval), and a Beat waiting for the lock retries at this interval, so a new instance
# takes over within this long after the old one releases the lock on SIGTERM.
BEAT_MAX_INTERVAL_SECONDS = 5
# The lock holder renews the lock on every wake-up; if it dies without releasing it (SIGKILL),
# another Beat takes over after this long. Must be well above BEAT_MAX_INTERVAL_SECONDS.
BEAT_LOCK_TIMEOUT_SECONDS = 30
# Beat rides out a Redis blip of about 5 s before it fails and procrun restarts it: each command
# is tried again 0.5, 1, 2 and 2 s after a connection error. These are redis-py's retries, on every
# command of Beat's client; RedBeat's own (redbeat_redis_options retry_period) cover the client's
# direct calls only, not the lock Beat extends at every tick nor its pipelines, so Beat failed at
# its first tick during an outage. Short, because Beat's grace is 10 s (procrun.toml): against a
# server that drops packets, each try also waits out the connect timeout, and a Beat stopped then
# is killed at the end of its grace, which loses nothing (its lock expires).
BEAT_REDIS_RETRIES = 4
BEAT_REDIS_FIRST_RETRY_DELAY_SECONDS = 0.5
BEAT_REDIS_MAX_RETRY_DELAY_SECONDS = 2.0
# A job that finishes while Redis is away waits this long for it to record its effect (the time a
# managed Redis takes to restart or fail over). Within the 30 s between the longest job and the soft
# time limit, so even that job gets the whole wait. About what Celery's own result backend waits
# before it gives up on a write (20 retries, at most 1 s apart).
JOB_REDIS_OUTAGE_SECONDS = 20
# Celery's own writes of a job's state (STARTED before it runs, SUCCESS after) ride out the same
# outage: retried on connection errors, sleeping a random 0..1 s between tries once past the first
# few (full jitter), so about 30 s in all, rarely under 22 s.
RESULT_BACKEND_MAX_RETRIES = 60
RESULT_BACKEND_MAX_SLEEP_MS = 1000


def celery_config(settings: Settings) -> dict[str, Any]:
    broker_ssl = settings.ssl_options(settings.broker_url)
    backend_ssl = settings.ssl_options(settings.result_backend)
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        # Always explicit for rediss://: without them kombu disables certificate checks (with a
        # warning) and the result backend refuses to start.
        "broker_use_ssl": broker_ssl or False,
        "redis_backend_use_ssl": backend_ssl or False,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
            "socket_timeout": SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": SOCKET_CONNECT_TIMEOUT_SECONDS,
            "socket_keepalive": True,
        },
        "redis_backend_health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
        "redis_socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "redis_socket_connect_timeout": SOCKET_CONNECT_TIMEOUT_SECONDS,
        "redis_socket_keepalive": True,
        "redis_retry_on_timeout": True,
        # The backend retries its SETs by itself (20 times, 1 s apart) but not the GET that
        # store_result starts with, so without this a job starting while Redis is away fails
        # outside its body at the STARTED write and is acknowledged as failed: lost.
        "result_backend_always_retry": True,
        "result_backend_max_retries": RESULT_BACKEND_MAX_RETRIES,
        "result_backend_base_sleep_between_retries_ms": 100,
        "result_backend_max_sleep_between_retries_ms": RESULT_BACKEND_MAX_SLEEP_MS,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # On a broker connection loss, running tasks go on and acknowledge their messages after
        # the reconnect: on Redis an acknowledgement is a command on the `unacked` hash, which a
        # new connection can send (app.consumer keeps kombu from putting those messages back on
        # the queue meanwhile). Cancelling them instead, as Celery does with this setting on,
        # loses them when the result backend is the same Redis: the cancellation's write to it
        # fails, so the terminated task counts as revoked and its message is acknowledged; or,
        # written, it leaves the message for the visibility timeout.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_consumer": "app.consumer:Consumer",
        "worker_concurrency": settings.worker_concurrency,
        "task_soft_time_limit": TASK_SOFT_TIME_LIMIT_SECONDS,
        "task_time_limit": TASK_TIME_LIMIT_SECONDS,
        "task_track_started": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        # Beat: schedule and lock in Redis, so no schedule file to write and one Beat at a time
        # across processes, instances and overlapping deploys.
        "beat_scheduler": "redbeat.RedBeatScheduler",
        "beat_max_loop_interval": BEAT_MAX_INTERVAL_SECONDS,
        "redbeat_redis_url": settings.redis_url,
        "redbeat_redis_use_ssl": settings.ssl_options(settings.redis_url),
        "redbeat_redis_options": {
            **settings.redis_options(settings.redis_url),
            "retry": beat_redis_retry(),
        },
        "redbeat_lock_timeout": BEAT_LOCK_TIMEOUT_SECONDS,
        "beat_schedule": {
            "tick": {
                "task": "app.tick",
                "schedule": settings.tick_seconds,
                # A tick nobody ran within its interval is superseded by the next one: after an
                # outage the worker must not run a backlog of stale ticks.
                "options": {"expires": settings.tick_seconds},
            },
        },
    }


def beat_redis_retry() -> Retry:
    """redis-py's retries for Beat's client (on ConnectionError and TimeoutError)."""
    # ExponentialBackoff waits min(cap, base * 2**n) before try n + 1.
    backoff = ExponentialBackoff(
        cap=BEAT_REDIS_MAX_RETRY_DELAY_SECONDS, base=BEAT_REDIS_FIRST_RETRY_DELAY_SECONDS / 2
    )
    return Retry(backoff, BEAT_REDIS_RETRIES)


def create_celery_app(settings: Settings) -> Any:  # Celery is untyped
    app = Celery("app")
    app.conf.update(celery_config(settings))
    app.task(name="app.run_job", bind=True)(_run_job)
    # A tick's return value is of no interest: do not fill the result backend with them.
    app.task(name="app.tick", bind=True, ignore_result=True)(_tick)
    return app


def _run_job(task: Any, job_id: str, seconds: float, payload: Any) -> dict[str, Any]:
    """Work for `seconds`, then record the effect of `job_id`: once, however often it runs."""
    time.sleep(seconds)
    try:
        recorded, executions = _store().record_effect(
            job_id,
            {
                "payload": payload,
                "seconds": seconds,
                "task_id": task.request.id,
                "worker": task.request.hostname or socket.gethostname(),
                "at": time.time(),
            },
        )
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        # Redis stayed away longer than JOB_REDIS_OUTAGE_SECONDS. Failing would acknowledge the
        # message and lose the job: give it back instead (requeued, or, if Redis is still down,
        # left unacknowledged for the visibility timeout), to run again in full.
        raise Reject(exc, requeue=True) from exc
    return {"job_id": job_id, "recorded": recorded, "executions": executions}


def _tick(task: Any) -> None:
    _store().record_tick(time.time(), task.request.id)


@functools.cache
def _store() -> JobStore:
    # Created on first use, i.e. in the pool process after the fork, not in the parent.
    return JobStore(connect(settings), outage_seconds=JOB_REDIS_OUTAGE_SECONDS)


def _on_setup_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Connected, this receiver replaces Celery's own logging setup in worker and beat.
    configure_logging(settings, level=loglevel)


settings = load_settings()
celery_app = create_celery_app(settings)
run_job = celery_app.tasks["app.run_job"]
tick = celery_app.tasks["app.tick"]

signals.setup_logging.connect(_on_setup_logging, weak=False)
# Sent once logging is set up (worker_init comes before it).
signals.celeryd_after_setup.connect(lambda **_: log_startup(settings, "worker"), weak=False)
signals.beat_init.connect(lambda **_: log_startup(settings, "beat"), weak=False)

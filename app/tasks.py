"""The Celery app (`celery -A app.tasks worker|beat`), its settings and its two tasks.

Durability: a task's message is acknowledged only after the task ran (acks_late), and requeued if
the process running it dies (reject_on_worker_lost), so a job is never lost, only possibly run
twice; run_job makes the second run harmless (see app.store). Each worker process reserves one
message at a time (prefetch 1) so long jobs do not sit behind each other in one process while
another idles.

Time limits and the visibility timeout go together: Redis hands an unacknowledged message to
another worker once it is older than the visibility timeout, so that timeout must exceed the
longest a task may run (the hard time limit), or a slow job would be run twice concurrently.
"""

from __future__ import annotations

import functools
import socket
import time
from typing import Any

from celery import Celery, signals

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
# Ride out a Redis blip this long before Beat fails and procrun restarts it. Short: Beat cannot
# act on SIGTERM while it retries, and its grace is 10 s (procrun.toml).
BEAT_REDIS_RETRY_SECONDS = 5


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
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # With acks_late the broker redelivers the running tasks' messages after a connection
        # loss anyway; finishing them as well would run them twice at once.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
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
            "retry_period": BEAT_REDIS_RETRY_SECONDS,
            **settings.redis_options(settings.redis_url),
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
    return {"job_id": job_id, "recorded": recorded, "executions": executions}


def _tick(task: Any) -> None:
    _store().record_tick(time.time(), task.request.id)


@functools.cache
def _store() -> JobStore:
    # Created on first use, i.e. in the pool process after the fork, not in the parent.
    return JobStore(connect(settings))


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

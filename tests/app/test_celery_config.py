"""The Celery app's configuration, checked on the real kombu and Celery objects it produces (no
server needed): TLS options reach the broker and the result backend, and the durability settings
hang together."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from celery.beat import Service
from celery.utils.imports import symbol_by_name
from celery.worker.consumer import Consumer as CeleryConsumer
from redbeat.schedulers import RetryingConnection, get_redis

from app.consumer import Consumer
from app.settings import load_settings
from app.tasks import (
    BEAT_LOCK_TIMEOUT_SECONDS,
    BEAT_MAX_INTERVAL_SECONDS,
    BEAT_REDIS_FIRST_RETRY_DELAY_SECONDS,
    BEAT_REDIS_MAX_RETRY_DELAY_SECONDS,
    BEAT_REDIS_RETRIES,
    JOB_REDIS_OUTAGE_SECONDS,
    MAX_JOB_SECONDS,
    beat_redis_retry,
    create_celery_app,
)

KOMBU_INSECURE_WARNING = "Secure redis scheme specified (rediss) with no ssl options"
TLS_URL = "rediss://:pa55word-for-tests@cache.example.net:6380/0"


def tls_app(tmp_path: Path, **environ: str) -> Any:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    return create_celery_app(
        load_settings({"REDIS_URL": TLS_URL, "REDIS_CA_CERTS": str(ca), **environ})
    )


def test_kombu_warns_and_disables_checks_without_ssl_options(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The failure the app prevents, on a bare Celery app: so the next tests mean something."""
    bare = Celery(broker=TLS_URL)
    with caplog.at_level(logging.WARNING), bare.connection_for_write() as connection:
        assert connection.ssl == {"ssl_cert_reqs": ssl.CERT_NONE}
    assert KOMBU_INSECURE_WARNING in caplog.text
    with pytest.raises(ValueError, match="must have parameter ssl_cert_reqs"):
        Celery(backend=TLS_URL).backend  # noqa: B018 - building the backend raises


def test_broker_connection_gets_verifying_ssl_options_and_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = tls_app(tmp_path)
    with caplog.at_level(logging.WARNING), app.connection_for_write() as connection:
        assert connection.ssl == {
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
            "ssl_check_hostname": True,
            "ssl_ca_certs": str(tmp_path / "ca.pem"),
        }
        assert connection.transport_options["health_check_interval"] > 0
    assert KOMBU_INSECURE_WARNING not in caplog.text


def test_result_backend_accepts_rediss_and_verifies(tmp_path: Path) -> None:
    backend = tls_app(tmp_path).backend  # raises ValueError if ssl_cert_reqs were missing
    assert backend.connparams["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert backend.connparams["ssl_check_hostname"] is True
    assert backend.connparams["ssl_ca_certs"] == str(tmp_path / "ca.pem")
    assert issubclass(backend.connparams["connection_class"], redis.SSLConnection)


def test_insecure_opt_out_reaches_broker_and_backend(tmp_path: Path) -> None:
    app = tls_app(tmp_path, REDIS_TLS_INSECURE="1")
    with app.connection_for_write() as connection:
        assert connection.ssl["ssl_cert_reqs"] == ssl.CERT_NONE
    assert app.backend.connparams["ssl_cert_reqs"] == ssl.CERT_NONE
    assert app.conf.redbeat_redis_use_ssl["ssl_cert_reqs"] == ssl.CERT_NONE


def test_plain_redis_gets_no_ssl_options() -> None:
    app = create_celery_app(load_settings({"REDIS_URL": "redis://127.0.0.1:1/0"}))
    assert app.conf.broker_use_ssl is False
    assert app.conf.redis_backend_use_ssl is False
    assert app.conf.redbeat_redis_use_ssl is None


def test_durability_settings_hang_together(tmp_path: Path) -> None:
    conf = tls_app(tmp_path).conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_connection_retry_on_startup is True
    assert MAX_JOB_SECONDS < conf.task_soft_time_limit < conf.task_time_limit
    # Redis redelivers an unacknowledged message after the visibility timeout: a job still
    # running at that point would run twice concurrently.
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert conf.redis_backend_health_check_interval > 0
    assert conf.redis_socket_keepalive is True


def test_a_connection_loss_leaves_running_jobs_running(tmp_path: Path) -> None:
    """Running jobs go on through a broker connection loss and acknowledge their messages after it
    (app.consumer): Celery's cancellation of them loses them when Redis is down (the acceptance
    test, tests/app/test_redis_outage.py, shows it fail with the setting on)."""
    conf = tls_app(tmp_path).conf
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is False
    consumer = symbol_by_name(conf.worker_consumer)  # how the worker resolves the setting
    assert consumer is Consumer
    assert issubclass(consumer, CeleryConsumer)


def test_a_job_and_celery_ride_out_the_same_redis_outage(tmp_path: Path) -> None:
    """The job waits JOB_REDIS_OUTAGE_SECONDS to record its effect; Celery's writes of its state,
    before and after it runs, wait about as long, on connection errors only, read off the real
    result backend."""
    app = tls_app(tmp_path)
    backend = app.backend
    assert backend.always_retry is True
    assert backend.exception_safe_to_retry(redis.ConnectionError("closed by server"))
    assert not backend.exception_safe_to_retry(ValueError("not a connection error"))
    # Retry n sleeps a random 0..min(max, base * 2**n) ms (full jitter): half that on average.
    expected_seconds = (
        sum(
            min(backend.max_sleep_between_retries_ms, backend.base_sleep_between_retries_ms * 2**n)
            / 2
            for n in range(1, int(backend.max_retries) + 1)
        )
        / 1000
    )
    assert expected_seconds >= JOB_REDIS_OUTAGE_SECONDS
    # Even the longest job has the whole wait before its soft time limit.
    assert app.conf.task_soft_time_limit > MAX_JOB_SECONDS + JOB_REDIS_OUTAGE_SECONDS


def test_beat_uses_redbeat_with_a_lock_and_tls(tmp_path: Path) -> None:
    conf = tls_app(tmp_path, TICK_SECONDS="1.5").conf
    assert conf.beat_scheduler == "redbeat.RedBeatScheduler"
    assert conf.redbeat_redis_url == TLS_URL
    assert conf.redbeat_redis_use_ssl["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert conf.redbeat_redis_options["ssl_ca_certs"] == str(tmp_path / "ca.pem")
    assert conf.beat_schedule["tick"]["schedule"] == 1.5


def test_every_command_of_beats_client_rides_out_a_blip(tmp_path: Path) -> None:
    """The client RedBeat builds retries in redis-py, so the lock it extends at every tick and its
    pipelines retry too, not only its direct calls (RedBeat's retry_period: not used, so that the
    two do not multiply)."""
    client = get_redis(tls_app(tmp_path))
    assert not isinstance(client, RetryingConnection)
    retry = client.connection_pool.connection_kwargs["retry"]
    assert retry == beat_redis_retry()
    assert retry.get_retries() == BEAT_REDIS_RETRIES
    # As ExponentialBackoff computes them: min(cap, base * 2**n) before try n + 1.
    waits = [
        min(BEAT_REDIS_MAX_RETRY_DELAY_SECONDS, BEAT_REDIS_FIRST_RETRY_DELAY_SECONDS / 2 * 2**n)
        for n in range(1, BEAT_REDIS_RETRIES + 1)
    ]
    assert waits[0] == BEAT_REDIS_FIRST_RETRY_DELAY_SECONDS
    assert 4 <= sum(waits) <= 6  # a blip of about 5 s, well inside Beat's 10 s grace


def test_the_scheduler_beat_builds_wakes_often_and_holds_a_renewable_lock(tmp_path: Path) -> None:
    """Read off the scheduler object Beat itself builds, since Celery ignores unknown settings."""
    app = tls_app(tmp_path)
    scheduler = Service(app, scheduler_cls=app.conf.beat_scheduler).get_scheduler(lazy=True)
    assert type(scheduler).__name__ == "RedBeatScheduler"
    # A waiting Beat retries the lock this often, so a handover takes at most this long.
    assert scheduler.max_interval == BEAT_MAX_INTERVAL_SECONDS
    # The holder renews the lock at every wake-up; it must outlive several of them.
    assert scheduler.lock_timeout == BEAT_LOCK_TIMEOUT_SECONDS >= 3 * BEAT_MAX_INTERVAL_SECONDS

"""app.store on a real redis-server: a job's effect is recorded once, a run is counted once however
often its call is retried, and the worker's store rides out a Redis restart while the web's fails
at once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.settings import Settings
from app.store import JobStore
from tests.app.redisserver import RedisServer
from tests.harness import DEADLINE_SECONDS, wait_for_state

OUTAGE_SECONDS = 60.0  # the worker store's patience in these tests: far longer than the restart


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def store(server: RedisServer, outage_seconds: float = 0.0) -> JobStore:
    client = redis.Redis.from_url(
        server.url, decode_responses=True, **Settings().redis_options(server.url)
    )
    return JobStore(client, outage_seconds=outage_seconds)


def test_each_run_counts_once_and_the_effect_is_recorded_once(server: RedisServer) -> None:
    jobs = store(server)
    assert jobs.record_effect("j", {"n": 1}, run_id="run-1") == (True, 1)
    # The same run again, as after an answer lost with the connection: the same answer.
    assert jobs.record_effect("j", {"n": 1}, run_id="run-1") == (True, 1)
    assert jobs.record_effect("j", {"n": 2}, run_id="run-2") == (False, 2)
    assert jobs.record_effect("j", {"n": 3}) == (False, 3)  # a new run id by default
    assert jobs.effect("j") == {"n": 1}
    assert jobs.executions("j") == 3


def test_the_worker_store_rides_out_a_restart(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = store(server, OUTAGE_SECONDS)
    jobs.ping()  # a pooled connection, which the restart breaks
    answers: list[tuple[bool, int]] = []
    errors: list[BaseException] = []

    def record() -> None:
        try:
            answers.append(jobs.record_effect("j", {"done": True}))
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    recorder = threading.Thread(target=record, daemon=True)
    with caplog.at_level(logging.WARNING, "app.store"), server.outage():
        recorder.start()
        wait_for_state(lambda: "Redis unavailable" in caplog.text or bool(errors), "a retry")
    recorder.join(OUTAGE_SECONDS)
    assert errors == []
    assert answers == [(True, 1)]
    assert jobs.executions("j") == 1


def test_the_web_store_does_not_wait(server: RedisServer) -> None:
    jobs = store(server)
    with server.outage():
        begun = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            jobs.record_effect("j", {"done": True})
        assert time.monotonic() - begun < DEADLINE_SECONDS

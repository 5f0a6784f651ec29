"""Stops that keep their promise, with a real Celery worker, gunicorn and redis-server:

- a SIGTERM while a `procrun restart worker` is under way: the shutdown's deadline binds the
  restart's stop too, QUIT comes in time and the running task goes back to the queue at once;
- a forced stop (a second Ctrl-C) sends QUIT now and SIGKILL shortly after, so the running task
  is requeued rather than left unacknowledged for Redis's visibility timeout.

In both, the task runs to completion exactly once, on the next start.
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.app.formation import AppFormation, app_environment
from tests.app.jobs import (
    STOP_DEADLINE_SECONDS,
    UNACKED_KEY,
    full_output,
    job_ids,
    restored,
    started,
    submit,
    tally,
    wait_for_effects,
)
from tests.app.redisserver import RedisServer
from tests.harness import wait_for_state

SHUTDOWN_TIMEOUT_SECONDS = 15.0  # AppFormation's --shutdown-timeout
LONG_JOB_SECONDS = 20  # outlasts the warm shutdown here: only a requeue lets it finish
EXIT_MARGIN_SECONDS = 1.5  # procrun's own exit after its last child, on a loaded CI machine


@pytest.fixture
def redis_client(plain_redis: RedisServer) -> Iterator[redis.Redis]:
    with plain_redis.client() as client:
        client.flushdb()
        yield client


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text
        assert "Exception in callback" not in text, text


def run_again_to_completion(
    tmp_path: Path, env: dict[str, str], client: redis.Redis, ids: list[str], *old: str
) -> None:
    """A fresh start runs the requeued job; it completes exactly once across both runs."""
    (tmp_path / "new").mkdir()
    with AppFormation(tmp_path / "new", env, "worker") as new:
        wait_for_effects(client, ids)
        assert new.stop() == 0, new.transcript()
        new_output = full_output(new)
    counts = tally(client, ids, "stop", *old, new_output)
    assert counts.effects == len(ids)


@contextlib.contextmanager
def running_a_long_job(
    tmp_path: Path, env: dict[str, str], client: redis.Redis, ids: list[str]
) -> Iterator[AppFormation]:
    """Web and worker up, the long job running on the worker."""
    (tmp_path / "old").mkdir()
    with AppFormation(tmp_path / "old", env, "web", "worker") as old:
        old.wait_until_web_listens()
        old.wait_until_worker_ready()
        submit(old.base_url, ids, seconds=LONG_JOB_SECONDS)
        wait_for_state(lambda: started(client, ids) == ids, "the long job running")
        yield old


def test_a_sigterm_during_a_restart_keeps_the_shutdown_deadline(
    plain_redis: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = app_environment(plain_redis.url, CELERY_CONCURRENCY="1")
    ids = job_ids("stop", 1)
    with running_a_long_job(tmp_path, env, redis_client, ids) as old:
        restart = old.client("restart", "worker")
        old.wait_for_line(r"signal\.sent .*process=worker\.1 signal=SIGTERM")
        old.wait_for_line(r"worker\.1 .*Warm shutdown")  # the restart's stop is under way
        begun = time.monotonic()
        old.signal(signal.SIGTERM)
        code = old.wait(STOP_DEADLINE_SECONDS)
        took = time.monotonic() - begun
        _, restart_error = restart.communicate(timeout=STOP_DEADLINE_SECONDS)
        output = full_output(old)
    assert took < SHUTDOWN_TIMEOUT_SECONDS + EXIT_MARGIN_SECONDS, output
    assert re.search(r"shutdown\.started .*deadline=15\.0", output), output
    assert re.search(r"signal\.sent .*process=worker\.1 signal=SIGQUIT", output), output
    assert restored(output) == 1, output
    assert redis_client.hlen(UNACKED_KEY) == 0, "nothing left for the visibility timeout"
    assert code == 0, output
    # The restart's client got an answer, not a hang-up.
    assert restart.returncode == 1, restart_error
    assert "shutting down" in restart_error
    assert "without a reply" not in restart_error
    no_traceback(output, old.stderr, restart_error)
    run_again_to_completion(tmp_path, env, redis_client, ids, output)


def test_a_forced_stop_requeues_the_running_task(
    plain_redis: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = app_environment(plain_redis.url, CELERY_CONCURRENCY="1")
    ids = job_ids("stop", 1)
    with running_a_long_job(tmp_path, env, redis_client, ids) as old:
        old.signal(signal.SIGINT)
        old.wait_for_line(r"worker\.1 .*Warm shutdown")
        begun = time.monotonic()
        old.signal(signal.SIGINT)  # the second Ctrl-C
        forced = old.wait_for_line(r"shutdown\.forced .*")
        code = old.wait(STOP_DEADLINE_SECONDS)
        took = time.monotonic() - begun
        output = full_output(old)
    assert "worker.1 gets SIGQUIT now, SIGKILL in 3 s" in forced.group(0), output
    assert "Ctrl-C again to kill now" in forced.group(0)
    assert took < 3.0 + EXIT_MARGIN_SECONDS, output
    assert restored(output) == 1, output
    assert redis_client.hlen(UNACKED_KEY) == 0, "nothing left for the visibility timeout"
    assert code in (0, 128 + signal.SIGKILL), output
    no_traceback(output, old.stderr)
    run_again_to_completion(tmp_path, env, redis_client, ids, output)

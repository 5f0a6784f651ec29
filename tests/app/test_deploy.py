"""Deploys and scale-out with real procrun, gunicorn, Celery and redis-server: no job is lost, and
each job's effect is recorded once.

- A deploy: jobs run on the old instance, the old procrun gets SIGTERM (warm shutdown: running jobs
  finish), a new instance starts and takes the rest.
- A deploy cut short by a deadline: the worker's grace ends before its jobs do, procrun sends QUIT
  before its deadline and Celery puts the running jobs back on the queue at once ("Restoring N
  unacknowledged message(s)"), not after Redis's visibility timeout; the new instance runs them.
- Scale-out: two `procrun start worker` instances share the queue; one is stopped mid-run.

Each test reports what it saw (jobs, deliveries, requeued messages, runs and effects) in a
"deploy counts" section at the end of the pytest run.
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.tasks import VISIBILITY_TIMEOUT_SECONDS
from tests.app.formation import AppFormation, app_environment, http
from tests.app.jobs import (
    QUEUE_KEY,
    STOP_DEADLINE_SECONDS,
    UNACKED_KEY,
    full_output,
    job_ids,
    job_lines,
    restored,
    started,
    stop_like_a_platform,
    submit,
    tally,
    wait_for_effects,
)
from tests.app.redisserver import RedisServer
from tests.harness import wait_for_state

# --- the report --------------------------------------------------------------------------------


class DeployReport:
    """A pytest plugin registered by the tests of this module: their counts, printed at the end
    of the run whatever the output options."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)
        print(line)  # also in the test's captured output (-rP, and on failure)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.lines:
            terminalreporter.section("deploy counts")
            for line in self.lines:
                terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> DeployReport:
    plugin = DeployReport()
    request.config.pluginmanager.register(plugin, f"procrun-deploy-report-{id(plugin)}")
    return plugin


# --- the fixture ---------------------------------------------------------------------------


@pytest.fixture
def redis_client(plain_redis: RedisServer) -> Iterator[redis.Redis]:
    with plain_redis.client() as client:
        client.flushdb()
        yield client


# --- the tests ---------------------------------------------------------------------------------


def test_a_deploy_loses_no_job_and_runs_none_twice(
    plain_redis: RedisServer, redis_client: redis.Redis, tmp_path: Path, report: DeployReport
) -> None:
    """Render's deploy with the repository's own settings: SIGTERM to the old instance while
    jobs run; its worker finishes them (warm shutdown) and leaves the rest to the new one."""
    env = app_environment(plain_redis.url, CELERY_CONCURRENCY="2")
    ids = job_ids("deploy", 20)
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    # shutdown_timeout=None: procrun.toml's deadline and graces, as in production.
    with AppFormation(tmp_path / "old", env, "web", "worker", shutdown_timeout=None) as old:
        old.wait_until_web_listens()
        old.wait_until_worker_ready()
        submit(old.base_url, ids, seconds=2)
        wait_for_state(lambda: len(started(redis_client, ids)) == 2, "two jobs running")
        running = started(redis_client, ids)
        old.signal(signal.SIGTERM)
        new_env = {**env, "CELERY_CONCURRENCY": "4"}
        with AppFormation(tmp_path / "new", new_env, "web", "worker", shutdown_timeout=None) as new:
            assert old.wait(STOP_DEADLINE_SECONDS) == 0, old.transcript()
            old_output = full_output(old)
            # Warm shutdown: the jobs running at the SIGTERM finished on the old instance.
            old_done = job_lines(old_output, "succeeded", "deploy")
            assert set(running) <= set(old_done), old_output
            wait_for_effects(redis_client, ids)
            job = http("GET", f"{new.base_url}/jobs/{ids[-1]}").body
            assert (job["state"], job["effect_recorded"], job["executions"]) == (
                "SUCCESS",
                True,
                1,
            )
            assert new.stop() == 0, new.transcript()
            new_output = full_output(new)
    counts = tally(redis_client, ids, "deploy", old_output, new_output)
    new_done = job_lines(new_output, "succeeded", "deploy")
    assert counts.effects == len(ids)
    assert sum(old_done.values()) + sum(new_done.values()) == len(ids)
    assert new_done, "the new instance took over the queue"
    report.add(
        counts.line("deploy (SIGTERM)", old=sum(old_done.values()), new=sum(new_done.values()))
    )


# A platform that SIGKILLs 10 s after its SIGTERM (docker stop's default); procrun's deadline is
# 2 s before it, and the worker gets QUIT 4 s before that: warm shutdown for 4 s, then cold.
PLATFORM_DEADLINE_SECONDS = 10.0
SHORT_DEADLINE_TOML = """\
shutdown_timeout = "8s"

[processes.web]
grace = "5s"

[processes.worker]
second_signal = "QUIT"
second_signal_margin = "4s"
"""
LONG_JOB_SECONDS = 10  # longer than the 4 s of warm shutdown: cut short by QUIT


def test_a_deploy_cut_short_requeues_running_jobs_at_once(
    plain_redis: RedisServer, redis_client: redis.Redis, tmp_path: Path, report: DeployReport
) -> None:
    """The old worker's jobs outlast its grace: QUIT before procrun's deadline makes Celery give
    their messages back at once, so the new instance runs them now, not after the visibility
    timeout (720 s), and procrun is done before the platform's SIGKILL."""
    config = tmp_path / "procrun.toml"
    config.write_text(SHORT_DEADLINE_TOML)
    env = app_environment(plain_redis.url, CELERY_CONCURRENCY="2")
    long_ids, short_ids = job_ids("cut", 2), job_ids("cut", 20)[2:]
    ids = long_ids + short_ids
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    with AppFormation(
        tmp_path / "old", env, "web", "worker", shutdown_timeout=None, config=config
    ) as old:
        old.wait_until_web_listens()
        old.wait_until_worker_ready()
        submit(old.base_url, long_ids, seconds=LONG_JOB_SECONDS)
        wait_for_state(lambda: len(started(redis_client, long_ids)) == 2, "both long jobs running")
        # The pool is busy (prefetch 1 per process): these wait in the queue.
        submit(old.base_url, short_ids, seconds=1)
        code, took = stop_like_a_platform(old, PLATFORM_DEADLINE_SECONDS)
        old_output = full_output(old)
        assert took < PLATFORM_DEADLINE_SECONDS, (
            f"the platform had to SIGKILL procrun:\n{old_output}"
        )
        assert code == 0, old_output
    assert re.search(r"signal\.sent .*process=worker\.1 signal=SIGQUIT", old_output), old_output
    assert restored(old_output) >= len(long_ids), old_output
    # Nothing is left for the visibility timeout: every message is back on the queue.
    assert redis_client.hlen(UNACKED_KEY) == 0
    assert redis_client.llen(QUEUE_KEY) == len(ids)
    assert job_lines(old_output, "succeeded", "cut") == Counter()
    begun = time.monotonic()
    with AppFormation(
        tmp_path / "new", {**env, "CELERY_CONCURRENCY": "4"}, "worker", config=config
    ) as new:
        waited = wait_for_effects(redis_client, ids)
        assert new.stop() == 0, new.transcript()
        new_output = full_output(new)
    assert time.monotonic() - begun < VISIBILITY_TIMEOUT_SECONDS / 10
    counts = tally(redis_client, ids, "cut", old_output, new_output)
    assert counts.effects == len(ids)
    report.add(
        counts.line(
            f"deploy cut short (QUIT at 4 s, procrun out after {took:.1f} s, all done "
            f"{waited:.1f} s after the new start)",
            old=sum(job_lines(old_output, "succeeded", "cut").values()),
            new=sum(job_lines(new_output, "succeeded", "cut").values()),
        )
    )


def test_two_worker_instances_share_the_queue_and_one_can_leave(
    plain_redis: RedisServer, redis_client: redis.Redis, tmp_path: Path, report: DeployReport
) -> None:
    """The split layout scaled out: a web service and two `procrun start worker` instances. One
    worker instance is stopped mid-run; the other finishes the queue, nothing lost or doubled."""
    env = app_environment(plain_redis.url, CELERY_CONCURRENCY="2")
    ids = job_ids("scale", 20)
    for name in ("web", "a", "b"):
        (tmp_path / name).mkdir()
    with (
        AppFormation(tmp_path / "web", env, "web") as web,
        AppFormation(tmp_path / "a", env, "worker") as a,
        AppFormation(tmp_path / "b", env, "worker") as b,
    ):
        web.wait_until_web_listens()
        a.wait_until_worker_ready()
        b.wait_until_worker_ready()
        submit(web.base_url, ids, seconds=1)
        a.wait_for_line(r"Task app\.run_job\[scale-\d+\] received")
        b.wait_for_line(r"Task app\.run_job\[scale-\d+\] received")
        assert a.stop() == 0, a.transcript()
        a_output = full_output(a)
        wait_for_effects(redis_client, ids)
        assert b.stop() == 0, b.transcript()
        b_output = full_output(b)
    counts = tally(redis_client, ids, "scale", a_output, b_output)
    a_done = sum(job_lines(a_output, "succeeded", "scale").values())
    b_done = sum(job_lines(b_output, "succeeded", "scale").values())
    assert counts.effects == len(ids)
    assert a_done + b_done == len(ids)
    assert a_done > 0
    assert b_done > 0
    report.add(counts.line("scale-out (one of two workers stopped)", a=a_done, b=b_done))

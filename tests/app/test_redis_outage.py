"""A redis-server restart under the running app, plain and TLS: the "Connection closed by server"
that users of managed Redis meet. The worker and Beat ride it out (no crash, no restart by
procrun), /health reports the outage and the recovery, and jobs submitted before, during (retried
by the client until Redis is back) and after it are each done exactly once. Also the two other
cases of app.consumer: a connection dropped while Redis stays up, and a message the worker holds
without running it when Redis goes away."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from app.settings import load_settings
from app.store import TICKS_KEY
from app.tasks import create_celery_app
from tests.app.formation import AppFormation, app_environment, http, post_json
from tests.app.jobs import (
    UNACKED_KEY,
    full_output,
    job_ids,
    job_lines,
    started,
    submit,
    tally,
    wait_for_effects,
)
from tests.app.redisserver import RedisServer, make_ca, server_certificate
from tests.harness import DEADLINE_SECONDS, wait_for_state

OUTAGE_GUARD_SECONDS = 60.0  # hang guard for the retrying client
RUNNING_JOB_SECONDS = 3.0  # still running when the connection is dropped, however slow the machine
# The countdown of a held job: it must still be waiting when Redis goes away (a hang guard, too).
HELD_JOB_COUNTDOWN_SECONDS = 15.0


@dataclass(frozen=True)
class Deployment:
    server: RedisServer
    env: dict[str, str]


def _deployment(kind: str, tmp_path: Path) -> Iterator[Deployment]:
    directory = tmp_path / "redis"
    directory.mkdir()
    if kind == "plain":
        server = RedisServer(directory)
        env = app_environment(server.url)
    else:
        files = server_certificate(directory, make_ca(directory, "issuer"))
        server = RedisServer(directory, tls=files, password="outage-pa55")
        env = app_environment(server.url, REDIS_CA_CERTS=str(files.ca))
    yield Deployment(server, env)
    server.stop()


@pytest.fixture(params=["plain", "tls"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    yield from _deployment(request.param, tmp_path)


@pytest.fixture
def plain_deployment(tmp_path: Path) -> Iterator[Deployment]:
    """For the mechanisms below the transport (the consumer's relay, Beat's retries): the
    acceptance test above covers TLS; once is enough for these, within CI's ten minutes."""
    yield from _deployment("plain", tmp_path)


def health(base_url: str) -> tuple[int, dict[str, object]]:
    reply = http("GET", f"{base_url}/health")
    return reply.status, reply.body


class RetryingClient(threading.Thread):
    """Submits jobs the way a careful client does during an outage: the same job id again until
    the app accepts it (the id makes the POST idempotent)."""

    def __init__(self, base_url: str, ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.ids = ids
        self.failures = 0
        self.first_failure = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            deadline = time.monotonic() + OUTAGE_GUARD_SECONDS
            for job_id in self.ids:
                while True:
                    reply = post_json(f"{self.base_url}/jobs", {"seconds": 0.2, "job_id": job_id})
                    if reply.status in (200, 202):
                        break
                    self.failures += 1
                    self.first_failure.set()
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{job_id} never accepted: {reply.status}")
                    time.sleep(0.2)  # a client's retry interval, not synchronisation
        except BaseException as error:  # reported by the test thread
            self.error = error
            self.first_failure.set()


def ticks(client: redis.Redis) -> int:
    return int(client.llen(TICKS_KEY))


def test_the_app_rides_out_a_redis_restart(deployment: Deployment, tmp_path: Path) -> None:
    server = deployment.server
    before, during, after = job_ids("before", 3), job_ids("during", 3), job_ids("after", 3)
    (tmp_path / "app").mkdir()
    with server.client() as client, AppFormation(tmp_path / "app", deployment.env) as app:
        app.wait_until_web_listens()
        app.wait_until_worker_ready()
        app.wait_for_line(r"beat\.1 .*beat: Acquired lock", 30)
        wait_for_state(lambda: health(app.base_url)[0] == 200, "/health 200 before the outage")
        submit(app.base_url, before, seconds=1)
        with server.outage():
            status, body = health(app.base_url)
            assert status == 503, body
            redis_check = body["redis"]
            assert isinstance(redis_check, dict)
            assert redis_check["ok"] is False, body
            retrying = RetryingClient(app.base_url, during)
            retrying.start()
            assert retrying.first_failure.wait(DEADLINE_SECONDS)
            app.wait_for_line(
                r"worker\.1 .*(Connection to broker lost|consumer: Cannot connect)",
                OUTAGE_GUARD_SECONDS,  # a hang guard: on a loaded machine Celery may take a while
            )
        retrying.join(OUTAGE_GUARD_SECONDS)
        assert retrying.error is None, retrying.error
        assert retrying.failures > 0, "the outage was seen by the client"
        wait_for_state(lambda: health(app.base_url)[0] == 200, "/health 200 after the outage")
        submit(app.base_url, after, seconds=0.2)
        ids = before + during + after
        wait_for_effects(client, ids)
        ticked = ticks(client)
        wait_for_state(lambda: ticks(client) >= ticked + 2, "Beat ticking after the outage", 30)
        status_line = app.client("status", "--json").communicate(timeout=DEADLINE_SECONDS)[0]
        rows = {row["name"]: row for row in json.loads(status_line)["processes"]}
        assert app.stop() == 0, app.transcript()
        output = full_output(app)
        counts = tally(client, ids, "before", output)
    assert counts.effects == len(ids)
    assert {name: rows[name]["restarts"] for name in ("web.1", "worker.1", "beat.1")} == {
        "web.1": 0,
        "worker.1": 0,
        "beat.1": 0,
    }, "the outage was ridden out, not crashed through"


def restarts(app: AppFormation) -> dict[str, int]:
    status_line = app.client("status", "--json").communicate(timeout=DEADLINE_SECONDS)[0]
    return {row["name"]: row["restarts"] for row in json.loads(status_line)["processes"]}


def unacked_ids(client: redis.Redis) -> set[str]:
    """The task ids of the messages waiting in kombu's unacked hash."""
    entries = client.hvals(UNACKED_KEY)
    return {json.loads(entry)[0]["headers"]["id"] for entry in entries}


def test_running_jobs_go_on_through_a_dropped_connection(
    plain_deployment: Deployment, tmp_path: Path
) -> None:
    """Every connection is closed while Redis stays up (a proxy or the service closing them): kombu
    manages to put the unacknowledged messages back on the queue at once, and the running jobs
    would run a second time. They go on instead, are not delivered again, and acknowledge their
    messages after the reconnection."""
    server = plain_deployment.server
    ids = job_ids("dropped", 2)  # one per pool process (CELERY_CONCURRENCY 2)
    (tmp_path / "app").mkdir()
    with server.client() as client, AppFormation(tmp_path / "app", plain_deployment.env) as app:
        app.wait_until_web_listens()
        app.wait_until_worker_ready()
        submit(app.base_url, ids, seconds=RUNNING_JOB_SECONDS)
        wait_for_state(lambda: started(client, ids) == ids, "both jobs running")
        # The BRPOP connection waits, paused, while both pool processes are busy, and kombu
        # reconnects it quietly; the broadcast (pub/sub) one is read, and its loss is the
        # worker's connection loss.
        for kind in ("normal", "pubsub"):
            assert client.client_kill_filter(_type=kind, skipme=True) > 0
        app.wait_for_line(r"worker\.1 .*Connection to broker lost")
        wait_for_effects(client, ids)
        wait_for_state(lambda: not unacked_ids(client) & set(ids), "the messages acknowledged")
        counts = restarts(app)
        assert app.stop() == 0, app.transcript()
        output = full_output(app)
        tally(client, ids, "dropped", output)
    assert job_lines(output, "received", "dropped") == dict.fromkeys(ids, 1), "not redelivered"
    assert counts["worker.1"] == 0, "no crash"


def test_a_held_message_is_put_back_after_a_restart(
    plain_deployment: Deployment, tmp_path: Path
) -> None:
    """A message the worker holds without running it (a countdown here; also one received for a
    pool process about to be free): kombu's attempt to put it back fails while Redis is down, and
    the worker puts it back once reconnected instead of leaving it to the visibility timeout (12
    minutes, past the deadline of wait_for_effects)."""
    server = plain_deployment.server
    job_id = "held-00"
    (tmp_path / "app").mkdir()
    with server.client() as client, AppFormation(tmp_path / "app", plain_deployment.env) as app:
        app.wait_until_web_listens()
        app.wait_until_worker_ready()
        producer = create_celery_app(load_settings(plain_deployment.env, stdout_isatty=False))
        try:
            producer.send_task(
                "app.run_job",
                args=[job_id, 0.2, None],
                task_id=job_id,
                countdown=HELD_JOB_COUNTDOWN_SECONDS,
            )
        finally:
            producer.close()
        app.wait_for_line(rf"worker\.1 .*Task app\.run_job\[{job_id}\] received")
        with server.outage():
            app.wait_for_line(r"worker\.1 .*Connection to broker lost")
        wait_for_effects(client, [job_id])
        counts = restarts(app)
        assert app.stop() == 0, app.transcript()
        output = full_output(app)
        tally(client, [job_id], "held", output)
    # Received again from the queue after the restart, where the worker put it back.
    assert job_lines(output, "received", "held") == {job_id: 2}
    assert counts["worker.1"] == 0, "no crash"


def test_beat_rides_out_an_outage_across_its_ticks(
    plain_deployment: Deployment, tmp_path: Path
) -> None:
    """Redis stays away across several of Beat's ticks (1 s): Beat retries every command, the lock
    it extends at every tick included, instead of failing at the first."""
    server = plain_deployment.server
    (tmp_path / "app").mkdir()
    with server.client() as client, AppFormation(tmp_path / "app", plain_deployment.env) as app:
        app.wait_until_worker_ready()
        app.wait_for_line(r"beat\.1 .*beat: Acquired lock", 30)
        wait_for_state(lambda: ticks(client) > 0, "a first tick")
        with server.outage():
            # The worker tries to reconnect 2 s after the loss, then 4 s after that: its second
            # try means Redis has been away for two of Beat's ticks.
            app.wait_for_line(r"worker\.1 .*Trying again in 4\.00 seconds")
        ticked = ticks(client)
        wait_for_state(lambda: ticks(client) >= ticked + 2, "Beat ticking after the outage", 30)
        counts = restarts(app)
        assert app.stop() == 0, app.transcript()
    assert counts["beat.1"] == 0, "Beat rode the outage out"

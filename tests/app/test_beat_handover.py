"""An overlapping deploy as Render does it: the new instance starts while the old one runs, then
the old one gets SIGTERM. Both run Beat; ticks never double, and the new instance's Beat takes
over within a few seconds of the old one releasing its lock."""

from __future__ import annotations

import itertools
from pathlib import Path

from app.store import TICKS_KEY
from app.tasks import BEAT_MAX_INTERVAL_SECONDS
from tests.app.formation import AppFormation, app_environment
from tests.app.redisserver import RedisServer
from tests.harness import wait_for_state


def tick_times(server: RedisServer) -> list[float]:
    with server.client() as client:
        return [float(entry.split()[0]) for entry in client.lrange(TICKS_KEY, 0, -1)]


def test_the_new_instance_takes_over_beat_without_double_ticks(
    plain_redis: RedisServer, tmp_path: Path
) -> None:
    with plain_redis.client() as client:
        client.flushdb()
    env = app_environment(plain_redis.url, CELERY_CONCURRENCY="1")
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    with AppFormation(tmp_path / "old", env, "worker", "beat") as old:
        old.wait_until_worker_ready()
        old.wait_for_line(r"beat\.1 .*beat: Acquired lock", 30)
        with AppFormation(tmp_path / "new", env, "worker", "beat") as new:
            new.wait_until_worker_ready()
            new.wait_for_line(r"beat\.1 .*beat: Starting")
            wait_for_state(lambda: len(tick_times(plain_redis)) >= 3, "ticks of the old Beat")
            assert old.stop() == 0, old.transcript()
            assert "beat: Releasing lock" in "\n".join(old.rest())
            handed_over = len(tick_times(plain_redis))
            new.wait_for_line(r"beat\.1 .*beat: Acquired lock", BEAT_MAX_INTERVAL_SECONDS + 10)
            wait_for_state(
                lambda: len(tick_times(plain_redis)) >= handed_over + 3, "ticks of the new Beat"
            )
            new.wait_for_line(r"beat\.1 .*Sending due task tick")
            assert new.stop() == 0, new.transcript()
    times = tick_times(plain_redis)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) > 0.3, gaps  # never two Beats at once
    # The longest pause is the handover: the new Beat retries the lock every max interval.
    assert max(gaps) < BEAT_MAX_INTERVAL_SECONDS + 3, gaps

"""The app's own data in Redis (REDIS_URL): submitted jobs, their effects, the ticks of Beat.

Keys:
  job:<id>         the submission, written once by POST /jobs; GET /jobs/<id> answers 404 without it
  effect:<id>      what run_job did, written once (SET NX) however many times the task ran
  executions:<id>  how many runs of run_job finished for <id>: more than 1 only after a redelivery
  ticks            the latest "<unix time> <task id>" entry per run of the periodic tick task

Celery delivers at least once (acks_late: a task whose worker died runs again), so the effect is
recorded with SET NX, atomically with the executions counter: exactly one effect per job id, and
a count that shows the redeliveries.
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis

from app.settings import Settings

RETENTION_SECONDS = 7 * 24 * 3600
TICKS_KEY = "ticks"
MAX_TICKS_KEPT = 10_000  # a minute's tick for a week; the list must not grow forever

# One script, so the effect and the count cannot disagree if the worker dies between two commands.
_RECORD_EFFECT = """
local created = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
local executions = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
if created then return {1, executions} end
return {0, executions}
"""


def connect(settings: Settings) -> redis.Redis:
    """A client for REDIS_URL with the app's timeouts, health checks and TLS options."""
    return redis.Redis.from_url(
        settings.redis_url, decode_responses=True, **settings.redis_options(settings.redis_url)
    )


class JobStore:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._record_effect = client.register_script(_RECORD_EFFECT)

    def ping(self) -> bool:
        return bool(self.client.ping())

    def register(self, job_id: str, submission: dict[str, Any]) -> bool:
        """Remember a submission; False if `job_id` was already submitted."""
        created = self.client.set(
            f"job:{job_id}", json.dumps(submission), nx=True, ex=RETENTION_SECONDS
        )
        return bool(created)

    def forget(self, job_id: str) -> None:
        """Undo register() when the job could not be queued, so a retry can submit it again."""
        self.client.delete(f"job:{job_id}")

    def submission(self, job_id: str) -> dict[str, Any] | None:
        return _loads(self.client.get(f"job:{job_id}"))

    def record_effect(self, job_id: str, effect: dict[str, Any]) -> tuple[bool, int]:
        """(whether this run recorded the effect, runs finished so far including this one)."""
        created, executions = cast(
            "list[int]",
            self._record_effect(
                keys=[f"effect:{job_id}", f"executions:{job_id}"],
                args=[json.dumps(effect), RETENTION_SECONDS],
            ),
        )
        return bool(created), int(executions)

    def effect(self, job_id: str) -> dict[str, Any] | None:
        return _loads(self.client.get(f"effect:{job_id}"))

    def executions(self, job_id: str) -> int:
        return int(cast("str | None", self.client.get(f"executions:{job_id}")) or 0)

    def record_tick(self, at: float, task_id: str) -> None:
        with self.client.pipeline() as pipe:
            pipe.rpush(TICKS_KEY, f"{at:.6f} {task_id}")
            pipe.ltrim(TICKS_KEY, -MAX_TICKS_KEPT, -1)
            pipe.execute()


def _loads(raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    return cast("dict[str, Any]", json.loads(cast("str", raw)))

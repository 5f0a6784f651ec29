"""The app's own data in Redis (REDIS_URL): submitted jobs, their effects, the ticks of Beat.

Keys:
  job:<id>         the submission, written once by POST /jobs; GET /jobs/<id> answers 404 without it
  effect:<id>      what run_job did, written once (SET NX) however many times the task ran
  executions:<id>  how many runs of run_job finished for <id>: more than 1 only after a redelivery
  runs:<id>        run id -> what record_effect answered it: a retried call is not a second run
  ticks            the latest "<unix time> <task id>" entry per run of the periodic tick task

Celery delivers at least once (acks_late: a task whose worker died runs again), so the effect is
recorded with SET NX, atomically with the executions counter: exactly one effect per job id, and
a count that shows the redeliveries.

Redis restarts: the worker's store (`outage_seconds` > 0) retries record_effect through an outage
of up to that long, so a job that finishes while Redis is away still records its effect and ends
normally instead of failing. A retry can repeat a script the server did run but whose answer was
lost with the connection; the run id makes that repetition answer the same instead of counting a
second run. The web's store does not wait: it answers 503 at once and the client retries.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis

from app.settings import Settings

RETENTION_SECONDS = 7 * 24 * 3600
TICKS_KEY = "ticks"
MAX_TICKS_KEPT = 10_000  # a minute's tick for a week; the list must not grow forever

# Retrying through an outage: the first retry soon, then at most every second.
FIRST_RETRY_DELAY_SECONDS = 0.1
MAX_RETRY_DELAY_SECONDS = 1.0

# One script, so the effect and the count cannot disagree if the worker dies between two commands.
# ARGV[3] identifies the run: the same run again (a retry) gets its first answer back.
_RECORD_EFFECT = """
local answered = redis.call('HGET', KEYS[3], ARGV[3])
if answered then
  local created, executions = string.match(answered, '^(%d+) (%d+)$')
  return {tonumber(created), tonumber(executions)}
end
local created = 0
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then created = 1 end
local executions = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], created .. ' ' .. executions)
redis.call('EXPIRE', KEYS[3], ARGV[2])
return {created, executions}
"""

_T = TypeVar("_T")
logger = logging.getLogger(__name__)


def connect(settings: Settings) -> redis.Redis:
    """A client for REDIS_URL with the app's timeouts, health checks and TLS options."""
    return redis.Redis.from_url(
        settings.redis_url, decode_responses=True, **settings.redis_options(settings.redis_url)
    )


class JobStore:
    """`outage_seconds`: how long record_effect retries while Redis is unreachable (0: not at
    all)."""

    def __init__(self, client: redis.Redis, *, outage_seconds: float = 0.0) -> None:
        self.client = client
        self.outage_seconds = outage_seconds
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

    def record_effect(
        self, job_id: str, effect: dict[str, Any], run_id: str | None = None
    ) -> tuple[bool, int]:
        """(whether this run recorded the effect, runs finished so far including this one).

        Each call is one run (`run_id`, a new one by default); its retries through an outage are
        not, and neither is a call with a `run_id` already recorded: it answers as the first."""
        keys = [f"effect:{job_id}", f"executions:{job_id}", f"runs:{job_id}"]
        run_id = run_id or uuid.uuid4().hex
        args: list[str | int] = [json.dumps(effect), RETENTION_SECONDS, run_id]
        created, executions = cast(
            "list[int]", self._ride_out(lambda: self._record_effect(keys=keys, args=args))
        )
        return bool(created), int(executions)

    def effect(self, job_id: str) -> dict[str, Any] | None:
        return _loads(self.client.get(f"effect:{job_id}"))

    def executions(self, job_id: str) -> int:
        return int(cast("str | None", self.client.get(f"executions:{job_id}")) or 0)

    def _ride_out(self, command: Callable[[], _T]) -> _T:
        """`command`, retried while Redis cannot be reached, for up to `outage_seconds`.

        redis-py drops a connection that failed, so each attempt connects afresh; ConnectionError
        covers a refused or closed connection and a server still loading its data after a
        restart, TimeoutError one that stopped answering."""
        deadline = time.monotonic() + self.outage_seconds
        delay = FIRST_RETRY_DELAY_SECONDS
        while True:
            try:
                return command()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if time.monotonic() + delay > deadline:
                    raise
                logger.warning("Redis unavailable (%s): retrying in %.1f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)

    def record_tick(self, at: float, task_id: str) -> None:
        with self.client.pipeline() as pipe:
            pipe.rpush(TICKS_KEY, f"{at:.6f} {task_id}")
            pipe.ltrim(TICKS_KEY, -MAX_TICKS_KEPT, -1)
            pipe.execute()


def _loads(raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    return cast("dict[str, Any]", json.loads(cast("str", raw)))

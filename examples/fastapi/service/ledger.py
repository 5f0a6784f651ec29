"""Every job and every run of it, in Redis, so that "done exactly once" can be checked.

Celery delivers at least once: with acks_late a job whose worker stopped before it finished is
given to the next worker and runs again. The ledger does not hide that: each job is one hash,
`job:<id>`, with `seconds` (what was asked), `runs` (runs that started) and `done` (runs that
finished). A job interrupted by a shutdown and finished by the next worker reads runs=2, done=1;
done=2 would be a job done twice. Each write is one MULTI, and the key expires a week after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

RETENTION_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class JobRecord:
    seconds: float
    runs: int  # runs that started
    done: int  # runs that finished


def job_key(job_id: str) -> str:
    return f"job:{job_id}"


class Ledger:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def submitted(self, job_id: str, seconds: float) -> None:
        with self.client.pipeline() as pipe:
            pipe.hset(job_key(job_id), mapping={"seconds": seconds, "submitted_at": time.time()})
            pipe.expire(job_key(job_id), RETENTION_SECONDS)
            pipe.execute()

    def run_started(self, job_id: str) -> int:
        """Count a run that begins; its number (1 for the first)."""
        return self._count(job_id, "runs")

    def run_finished(self, job_id: str) -> int:
        """Count a run that finished; how many have (more than 1: the job was done twice)."""
        return self._count(job_id, "done")

    def read(self, job_id: str) -> JobRecord | None:
        fields: dict[str, str] = self.client.hgetall(job_key(job_id))  # type: ignore[assignment]
        if "seconds" not in fields:
            return None
        return JobRecord(
            seconds=float(fields["seconds"]),
            runs=int(fields.get("runs", 0)),
            done=int(fields.get("done", 0)),
        )

    def ping(self) -> bool:
        return bool(self.client.ping())

    def _count(self, job_id: str, field: str) -> int:
        with self.client.pipeline() as pipe:
            pipe.hincrby(job_key(job_id), field, 1)
            pipe.expire(job_key(job_id), RETENTION_SECONDS)
            count, _ = pipe.execute()
        return int(count)

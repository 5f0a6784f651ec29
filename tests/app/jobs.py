"""Jobs of the reference app as the deploy and stop tests see them: submitting, what Redis says
about them (state, executions, effects, the queue and kombu's unacked hash), what the worker logged,
and a platform's SIGTERM-then-SIGKILL."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from tests.app.formation import post_json
from tests.harness import Procrun, wait_for_state

JOB_DEADLINE_SECONDS = 90.0  # a hang guard; a lost job would wait for the 720 s visibility timeout
STOP_DEADLINE_SECONDS = 30.0
# kombu's Redis transport: the queue is a list named after it, and a message delivered but not yet
# acknowledged waits in this hash until a worker acknowledges it, restores it (QUIT, connection
# close), or the visibility timeout passes.
QUEUE_KEY = "celery"
UNACKED_KEY = "unacked"
RESTORED = re.compile(r"Restoring (\d+) unacknowledged message\(s\)")


# --- jobs and what Redis says about them -------------------------------------------------------


def job_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n:02d}" for n in range(count)]


def submit(base_url: str, ids: Iterable[str], seconds: float) -> None:
    for job_id in ids:
        reply = post_json(f"{base_url}/jobs", {"seconds": seconds, "job_id": job_id})
        assert reply.status == 202, reply.body


def task_state(client: redis.Redis, job_id: str) -> str | None:
    """Celery's state of the job (STARTED, SUCCESS...) from the result backend; None before."""
    raw = client.get(f"celery-task-meta-{job_id}")
    return None if raw is None else str(json.loads(raw)["status"])


def started(client: redis.Redis, ids: Iterable[str]) -> list[str]:
    return [job_id for job_id in ids if task_state(client, job_id) == "STARTED"]


def effects_recorded(client: redis.Redis, ids: list[str]) -> int:
    return int(client.exists(*(f"effect:{job_id}" for job_id in ids)))


def executions(client: redis.Redis, ids: list[str]) -> dict[str, int]:
    values = client.mget([f"executions:{job_id}" for job_id in ids])
    return {job_id: int(value or 0) for job_id, value in zip(ids, values, strict=True)}


def wait_for_effects(client: redis.Redis, ids: list[str]) -> float:
    """Wait until every job's effect is recorded; the seconds it took."""
    begun = time.monotonic()
    wait_for_state(
        lambda: effects_recorded(client, ids) == len(ids),
        f"the effects of all {len(ids)} jobs",
        JOB_DEADLINE_SECONDS,
    )
    return time.monotonic() - begun


# --- what the worker logs said ------------------------------------------------------------------


def full_output(procrun: Procrun) -> str:
    """Everything an exited procrun printed."""
    procrun.rest()
    return procrun.transcript()


def job_lines(output: str, event: str, prefix: str) -> Counter[str]:
    """Job id -> how often the worker logged `Task app.run_job[<id>] <event>`."""
    pattern = rf"Task app\.run_job\[({re.escape(prefix)}-\d+)\] {event}"
    return Counter(re.findall(pattern, output))


def restored(output: str) -> int:
    return sum(int(n) for n in RESTORED.findall(output))


@dataclass(frozen=True)
class Counts:
    jobs: int
    effects: int
    runs: int
    deliveries: int
    requeued: int

    def line(self, what: str, **per_instance: int) -> str:
        ran = ", ".join(f"{name} ran {n}" for name, n in per_instance.items())
        return (
            f"{what}: {self.jobs} jobs, {self.deliveries} deliveries, {self.requeued} requeued, "
            f"{self.runs} completed runs, {self.effects} effects, "
            f"{self.runs - self.effects} duplicate runs; {ran}"
        )


def tally(client: redis.Redis, ids: list[str], prefix: str, *outputs: str) -> Counts:
    runs = executions(client, ids)
    assert runs == dict.fromkeys(ids, 1), "every job must run to completion exactly once"
    return Counts(
        jobs=len(ids),
        effects=effects_recorded(client, ids),
        runs=sum(runs.values()),
        deliveries=sum(sum(job_lines(o, "received", prefix).values()) for o in outputs),
        requeued=sum(restored(o) for o in outputs),
    )


def stop_like_a_platform(procrun: Procrun, deadline: float) -> tuple[int, float]:
    """SIGTERM, then SIGKILL at `deadline` if procrun is still running: (exit code, seconds)."""
    begun = time.monotonic()
    procrun.signal(signal.SIGTERM)
    try:
        code = procrun.proc.wait(deadline)
    except subprocess.TimeoutExpired:
        procrun.proc.kill()
        code = procrun.proc.wait()
    return code, time.monotonic() - begun

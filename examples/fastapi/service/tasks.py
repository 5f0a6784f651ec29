"""The Celery app (`celery -A service.tasks worker`, also Flower's) and its one task, run_job.

Durability, as in the repository's reference app: a job's message is acknowledged after the job
ran (acks_late) and requeued if the process running it dies (reject_on_worker_lost), so a job is
never lost, only possibly run again, which the ledger counts. Each pool process reserves one
message at a time (prefetch 1). On the stop procrun gives a worker (TERM: finish running jobs;
QUIT 10 s before the grace ends: give unfinished ones back), a job cut short is back in the queue
at once and the next worker runs it from the start.

Time limits and the visibility timeout go together: Redis hands an unacknowledged message to
another worker once it is older than the visibility timeout, so it must exceed the hard time
limit, or a long job would run twice at the same time.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from typing import Any

import redis
from celery import Celery

from service.ledger import Ledger
from service.settings import HEALTH_CHECK_INTERVAL_SECONDS, Settings, settings_or_exit

# Jobs fit in procrun's worker grace (280 s, procrun.toml), so a warm shutdown can always let one
# finish before the deadline; a longer one belongs in smaller pieces.
MAX_JOB_SECONDS = 240
TASK_SOFT_TIME_LIMIT_SECONDS = MAX_JOB_SECONDS + 10
TASK_TIME_LIMIT_SECONDS = MAX_JOB_SECONDS + 20
VISIBILITY_TIMEOUT_SECONDS = TASK_TIME_LIMIT_SECONDS + 60

logger = logging.getLogger(__name__)
KOMBU_INSECURE_WARNING = "Secure redis scheme specified (rediss) with no ssl options"


class _UrlMaskingWarningFilter(logging.Filter):
    """Drops kombu's "defaulting to insecure SSL" warning where it is false: when Celery answers
    `inspect conf` (Flower asks it of every worker it sees), it builds a kombu Connection from
    broker_url only to mask the password (celery/app/utils.py, maybe_censor); that Connection
    has no ssl options and never connects, yet kombu warns. Every other such warning passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(KOMBU_INSECURE_WARNING):
            return True
        frame = inspect.currentframe()
        while frame is not None:
            if frame.f_code.co_name == "maybe_censor" and (
                frame.f_globals.get("__name__") == "celery.app.utils"
            ):
                return False
            frame = frame.f_back
        return True


def celery_config(settings: Settings) -> dict[str, Any]:
    ssl_options = settings.ssl_options()
    connection = settings.connection_options()
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        # Explicit for rediss:// (settings.py says why); False for plain redis://.
        "broker_use_ssl": ssl_options or False,
        "redis_backend_use_ssl": ssl_options or False,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
            **connection,
        },
        # The result backend takes the same options, named redis_socket_timeout and so on.
        **{f"redis_{name}": value for name, value in connection.items()},
        "redis_backend_health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Celery 5's behaviour, said explicitly (Celery warns otherwise): a broker connection lost
        # under a running job lets the job go on; its message may be delivered again after the
        # reconnect, and the ledger then counts a second run.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_soft_time_limit": TASK_SOFT_TIME_LIMIT_SECONDS,
        "task_time_limit": TASK_TIME_LIMIT_SECONDS,
        "task_track_started": True,  # GET /jobs/<id> shows STARTED while it runs
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
    }


def _run_job(job_id: str, seconds: float) -> dict[str, Any]:
    """Work for `seconds`, counting the run in the ledger when it starts and when it ends."""
    run = ledger().run_started(job_id)
    logger.info("job %s: run %d started (%g s)", job_id, run, seconds)
    time.sleep(seconds)
    done = ledger().run_finished(job_id)
    logger.info("job %s: run %d finished (done %d time(s))", job_id, run, done)
    return {"job_id": job_id, "run": run, "done": done}


@functools.cache
def ledger() -> Ledger:
    # Made on first use: in the pool process after the fork, never shared across one.
    return Ledger(
        redis.Redis.from_url(settings.redis_url, decode_responses=True, **settings.redis_options())
    )


settings = settings_or_exit()
logging.getLogger("kombu.connection").addFilter(_UrlMaskingWarningFilter())
celery_app = Celery("service")
celery_app.conf.update(celery_config(settings))
run_job = celery_app.task(name="service.run_job")(_run_job)

"""The Celery tasks. Each runs in a pool process of `celery -A mysite worker`; Celery's Django
fixup closes stale database connections between tasks.

build_report counts its runs on the job's row (reports.models), so a run twice is visible rather
than silently rewriting the same values.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from reports.models import Report

logger = logging.getLogger(__name__)


def _build_report(task: Any, job_id: str) -> dict[str, Any]:
    started = Report.objects.filter(job_id=job_id).update(
        state=Report.State.RUNNING,
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        worker=task.request.hostname or "",
    )
    if not started:  # purged meanwhile: nothing to build, nothing to retry
        logger.warning("report %s: no such row, skipped", job_id)
        return {"job_id": job_id, "built": False}
    seconds = Report.objects.values_list("seconds", flat=True).get(job_id=job_id)
    logger.info("report %s: building (%g s)", job_id, seconds)
    time.sleep(seconds)  # stands for the real work
    Report.objects.filter(job_id=job_id).update(
        state=Report.State.DONE, completions=F("completions") + 1, finished_at=timezone.now()
    )
    return {"job_id": job_id, "built": True}


def _purge_expired_reports() -> int:
    """Delete the reports finished more than REPORT_RETENTION_DAYS ago; how many went."""
    cutoff = timezone.now() - timedelta(days=settings.REPORT_RETENTION_DAYS)
    expired = Report.objects.filter(state=Report.State.DONE, finished_at__lt=cutoff)
    deleted: int = expired.delete()[0]
    return deleted


# Celery has no type hints: applied as calls rather than as decorators, shared_task leaves the
# functions above typed for mypy. The names are what the Beat schedule (settings) refers to.
build_report: Any = shared_task(name="reports.build_report", bind=True)(_build_report)
purge_expired_reports: Any = shared_task(name="reports.purge_expired_reports", ignore_result=True)(
    _purge_expired_reports
)

# mypy: allow-untyped-decorators
"""The HTTP side: submit a report job, show its row, and a deliberately slow page.

POST /reports?seconds=S[&job_id=ID]  202 {"job_id", "url"}: a row is written, then a task queued
GET  /reports/<job_id>               200 the row (state, attempts, completions...), 404 if unknown
GET  /slow?seconds=S                 200 after S seconds: a request that is in flight at a deploy
GET  /health                         200 once the database answers

The submit endpoint is an API for clients without a session, hence csrf_exempt.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid

from django.conf import settings
from django.db import IntegrityError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from kombu.exceptions import OperationalError

from reports.models import Report
from reports.tasks import build_report

logger = logging.getLogger(__name__)

JOB_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Below gunicorn's graceful_timeout (25 s, gunicorn.conf.py): a slow request in flight at SIGTERM
# always has the time to finish.
MAX_SLOW_SECONDS = 20.0


class BadRequest(Exception):
    pass


def _seconds(request: HttpRequest, limit: float) -> float:
    raw = request.GET.get("seconds", "0")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= limit:  # also refuses NaN
        raise BadRequest(f"seconds: expected a number from 0 to {limit:g}, got {raw!r}")
    return value


@csrf_exempt
@require_POST
def submit(request: HttpRequest) -> JsonResponse:
    try:
        seconds = _seconds(request, settings.MAX_REPORT_SECONDS)
        job_id = request.GET.get("job_id") or uuid.uuid4().hex
        if not JOB_ID.fullmatch(job_id):
            raise BadRequest("job_id: expected 1 to 64 of A-Z a-z 0-9 _ . -")
    except BadRequest as problem:
        return JsonResponse({"error": str(problem)}, status=400)
    try:
        # Committed before the task is queued, so the worker always finds the row.
        report = Report.objects.create(job_id=job_id, seconds=seconds)
    except IntegrityError:
        # The same job id again (a client retrying a POST whose answer it lost): nothing queued.
        existing = Report.objects.get(job_id=job_id)
        return JsonResponse({**existing.as_dict(), "duplicate": True}, status=200)
    try:
        build_report.apply_async(args=[job_id], task_id=job_id)
    except OperationalError as error:  # the broker is unreachable: no row for a job never queued
        report.delete()
        logger.warning("could not queue report %s: %s", job_id, error)
        return JsonResponse({"error": "the job queue is unreachable, try again"}, status=503)
    response = JsonResponse({"job_id": job_id, "url": f"/reports/{job_id}"}, status=202)
    response["Location"] = f"/reports/{job_id}"
    return response


@require_GET
def show(request: HttpRequest, job_id: str) -> JsonResponse:
    try:
        report = Report.objects.get(job_id=job_id)
    except Report.DoesNotExist:
        return JsonResponse({"error": f"no report {job_id!r}"}, status=404)
    return JsonResponse(report.as_dict())


@require_GET
def slow(request: HttpRequest) -> JsonResponse:
    try:
        seconds = _seconds(request, MAX_SLOW_SECONDS)
    except BadRequest as problem:
        return JsonResponse({"error": str(problem)}, status=400)
    logger.info("slow request started: %g s", seconds)
    time.sleep(seconds)
    return JsonResponse({"slept": seconds})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    connection.ensure_connection()
    return JsonResponse({"ok": True})

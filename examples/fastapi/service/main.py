"""The web API (`uvicorn service.main:app`, or gunicorn with uvicorn-worker's UvicornWorker).

  POST /jobs {"seconds": 0..240}  queue a job -> 202 {"id": ...}, Location /jobs/<id>
  GET  /jobs/<id>                 Celery's state and result, and the ledger's runs and done
  GET  /slow?seconds=0..60        answers after that long (a request in flight at a deploy)
  GET  /health                    200 when Redis answers, else 503

Flower is not served here: it listens on its own port (FLOWER_PORT), behind its own basic auth.
The Celery and Redis calls block, so those endpoints are plain `def`: FastAPI runs them in its
thread pool, and the event loop stays free for everything else, the slow endpoint included.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any

import redis
from celery.result import AsyncResult
from fastapi import FastAPI, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

from service.tasks import MAX_JOB_SECONDS, celery_app, ledger, run_job

MAX_SLOW_SECONDS = 60.0

# The service's own lines; uvicorn's and gunicorn's loggers keep their own handlers.
logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
logger = logging.getLogger("service.web")
app = FastAPI(title="procrun FastAPI example")


class JobRequest(BaseModel):
    seconds: float = Field(default=0.0, ge=0.0, le=MAX_JOB_SECONDS)


class JobSubmitted(BaseModel):
    id: str


class JobStatus(BaseModel):
    id: str
    state: str  # Celery's: PENDING, STARTED, SUCCESS, FAILURE, RETRY
    result: Any = None
    seconds: float
    runs: int  # runs that started (more than 1: the job was given to a worker again)
    done: int  # runs that finished (exactly 1 once it is done)


@app.post("/jobs", status_code=status.HTTP_202_ACCEPTED)
def submit_job(job: JobRequest, response: Response) -> JobSubmitted:
    job_id = uuid.uuid4().hex
    try:
        ledger().submitted(job_id, job.seconds)  # first, so a worker never runs an unknown job
        run_job.apply_async(args=(job_id, job.seconds), task_id=job_id)
    except redis.RedisError as error:
        raise _unavailable(error) from None
    response.headers["Location"] = f"/jobs/{job_id}"
    return JobSubmitted(id=job_id)


@app.get("/jobs/{job_id}")
def read_job(job_id: str) -> JobStatus:
    try:
        # Celery's state first, the ledger after: a run counts itself done before its task
        # stores SUCCESS, so a job read as SUCCESS always shows its run done.
        result = AsyncResult(job_id, app=celery_app)
        state = str(result.state)
        value = result.result if state == "SUCCESS" else None
        record = ledger().read(job_id)
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such job: {job_id}")
    except redis.RedisError as error:
        raise _unavailable(error) from None
    return JobStatus(
        id=job_id,
        state=state,
        result=value,
        seconds=record.seconds,
        runs=record.runs,
        done=record.done,
    )


@app.get("/slow")
async def slow(
    seconds: Annotated[float, Query(ge=0.0, le=MAX_SLOW_SECONDS)] = 1.0,
) -> dict[str, float]:
    # Logged as it begins, so a test (or you) can stop the server while it is in flight.
    logger.info("slow request started: %g s", seconds)
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@app.get("/health")
def health() -> dict[str, bool]:
    try:
        ledger().ping()
    except redis.RedisError as error:
        raise _unavailable(error) from None
    return {"redis": True}


def _unavailable(error: redis.RedisError) -> HTTPException:
    # The class only: a connection error's text can name the host, never a password, but the
    # class says enough to a client.
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, f"redis unavailable: {type(error).__name__}"
    )

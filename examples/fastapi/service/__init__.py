"""The FastAPI example: a web API that queues jobs, a Celery worker that runs them, Flower.

settings.py  the environment -> Settings: Redis URL, TLS verification, job limits
ledger.py    every run of every job, counted in Redis, so a job run twice shows
tasks.py     the Celery app (`celery -A service.tasks worker`) and its one task
main.py      the FastAPI app (`uvicorn service.main:app`): enqueue, read, a slow endpoint
flower.py    Flower (`python -m service.flower`), refused without FLOWER_BASIC_AUTH
"""

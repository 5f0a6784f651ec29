# mypy: allow-subclassing-any
"""One Report row per job. Its job id is unique, and the task counts its runs on the row instead of
overwriting it, so a job that ran twice shows: `attempts` counts every start, `completions` every
run that reached its end. With acks_late a job can start again after its worker was stopped mid-run
(attempts 2); it must still complete once (completions 1)."""

from __future__ import annotations

from typing import Any

from django.db import models


class Report(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"

    job_id = models.CharField(max_length=64, unique=True)
    seconds = models.FloatField(help_text="how long building the report takes")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    completions = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.job_id} ({self.state})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "seconds": self.seconds,
            "state": self.state,
            "attempts": self.attempts,
            "completions": self.completions,
            "worker": self.worker,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }

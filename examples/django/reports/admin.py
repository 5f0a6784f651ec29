# mypy: allow-subclassing-any
"""Reports in Django's admin (/admin/), with the run counters in the list. (The line above: see
reports/apps.py.)"""

from __future__ import annotations

from django.contrib import admin

from reports.models import Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("job_id", "state", "attempts", "completions", "created_at", "finished_at")
    list_filter = ("state",)
    search_fields = ("job_id",)

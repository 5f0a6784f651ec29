# mypy: allow-subclassing-any
"""The reports app's configuration. (Django has no type hints: to mypy its base classes are Any,
which strict mode refuses to subclass unless told, as the line above does.)"""

from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reports"

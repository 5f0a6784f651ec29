"""The Celery app, as Celery's "First steps with Django" guide wires it:
`celery -A mysite worker` and `celery -A mysite beat` find it through mysite/__init__.py."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

# RedBeat decides whether a setting of its own is set by looking for its bare name among the
# configuration's keys (redbeat 2.4), where the Django namespace keeps CELERY_REDBEAT_*: it would
# fall back to the broker's URL, TLS and options and ignore the lock timeout. Celery itself
# resolves the bare names, so they are copied under those names once configured.
REDBEAT_SETTINGS = (
    "redbeat_redis_url",
    "redbeat_redis_use_ssl",
    "redbeat_redis_options",
    "redbeat_lock_timeout",
)

app = Celery("mysite")
# Every Celery setting is a CELERY_* name in mysite/settings.py.
app.config_from_object("django.conf:settings", namespace="CELERY")
# Finds reports/tasks.py (and any other installed app's tasks.py).
app.autodiscover_tasks()


def _expose_redbeat_settings(source: Any, **_: Any) -> None:
    source.update({name: source.get(name) for name in REDBEAT_SETTINGS})


app.on_after_configure.connect(_expose_redbeat_settings, weak=False)

"""gunicorn settings for the web process:
`gunicorn -c app/gunicorn.conf.py 'app.web:create_application()'`.
"""

from __future__ import annotations

import os
from typing import Any

from app.logsetup import gunicorn_logger_class, log_startup
from app.settings import SettingsError, load_settings


def _workers() -> int:
    raw = os.environ.get("WEB_CONCURRENCY", "2")
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"WEB_CONCURRENCY: expected a positive whole number, got {raw!r}")
    return int(raw)


bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = _workers()
# procrun gives the web process 30 s after its SIGTERM (procrun.toml); gunicorn lets requests in
# flight finish for at most 25 s, then stops its workers itself, well before procrun's SIGKILL.
graceful_timeout = 25
timeout = 30
accesslog = "-"
errorlog = "-"
# gunicorn >= 25.1 opens a control socket under $XDG_RUNTIME_DIR or ~/.gunicorn; a container has
# no use for it and its home may be read-only. procrun is the control point.
control_socket_disable = True
# Workers touch a heartbeat file; in memory it never waits on a slow container disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
logger_class = gunicorn_logger_class(load_settings)


def on_starting(server: Any) -> None:
    log_startup(load_settings(), "web")

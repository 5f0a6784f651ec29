"""gunicorn's settings for the web process (`gunicorn -c gunicorn.conf.py mysite.wsgi`). The
arbiter reads this file before it forks any worker, so WEB_CONCURRENCY=0 stops it at once with one
line (a SystemExit: gunicorn prints any other exception here with a traceback; a WEB_CONCURRENCY
that is not a number fails in gunicorn itself, which reads it as its default)."""

from __future__ import annotations

import os

_concurrency = os.environ.get("WEB_CONCURRENCY", "2").strip()
if not _concurrency.isdigit() or int(_concurrency) == 0:
    raise SystemExit(f"gunicorn.conf.py: WEB_CONCURRENCY: expected 1 or more, got {_concurrency!r}")

bind = "0.0.0.0:" + os.environ.get("PORT", "8000")
workers = int(_concurrency)
# The stop: on procrun's SIGTERM the arbiter stops accepting, lets the requests in flight run for
# up to graceful_timeout, then exits on its own, 5 s before web's grace in procrun.toml ends.
graceful_timeout = 25
timeout = 30  # a worker silent this long is killed and replaced
# Access lines and errors on stdout/stderr, which procrun prefixes with "web.1".
accesslog = "-"
errorlog = "-"
# No control socket (gunicorn >= 25.1 makes one under $HOME): procrun is the control point, and
# an image's home need not be writable.
control_socket_disable = True
# The workers' heartbeat file in memory, never on a slow container disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

"""The Django example (examples/django/) run by real procrun on its own Procfile and procrun.toml,
against a test redis-server, with its SQLite database and static files in a scratch data dir; and
what the tests read back: the report rows over HTTP, the database file, the broker's queues."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis

from tests.app.formation import REPO, http
from tests.app.redisserver import free_port
from tests.harness import Procrun, client_command

EXAMPLE = REPO / "examples" / "django"
PROCFILE = EXAMPLE / "Procfile"
STARTUP_DEADLINE_SECONDS = 40.0  # release, then gunicorn and Celery, on a loaded CI machine
JOB_DEADLINE_SECONDS = 60.0
# kombu's Redis transport: the queue is a list named after it; a delivered message waits in this
# hash until it is acknowledged or restored (QUIT), or the visibility timeout passes.
QUEUE_KEY = "celery"
UNACKED_KEY = "unacked"
SECRET_KEY = "test-only-secret-key-for-the-django-example-0123456789"


def django_environment(redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The example's variables: the test Redis, a scratch data dir, one process of each kind, a
    purge every second; empty means unset, so nothing from the developer's shell counts."""
    return {
        # pytest may run without the venv activated: gunicorn and celery live beside Python.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_DEBUG": "",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": "",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": "",
        "CELERY_RESULT_BACKEND": "",
        "REDIS_CA_CERTS": "",
        "REDIS_TLS_INSECURE": "",
        "WEB_CONCURRENCY": "1",
        "CELERY_CONCURRENCY": "1",
        "PURGE_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "INFO",
        **extra,
    }


class DjangoSite(Procrun):
    """`procrun start -f examples/django/Procfile [NAME...]`: the example directory is the project
    directory (its procrun.toml applies, commands run there); `directory` is only scratch space
    for the harness. A control socket of its own, in a short private directory."""

    def __init__(
        self,
        directory: Path,
        env: Mapping[str, str],
        *names: str,
        shutdown_timeout: str = "15s",
    ) -> None:
        self.port = free_port()
        self._socket_dir = Path(tempfile.mkdtemp(prefix="prs-"))
        self.data_dir = Path(env["DATA_DIR"])
        super().__init__(
            directory,
            PROCFILE.read_text(),  # the harness writes one; -f names the real one
            "-f",
            str(PROCFILE),
            "--shutdown-timeout",
            shutdown_timeout,
            *names,
            env={
                **env,
                "PORT": str(self.port),
                "PROCRUN_SOCKET": str(self._socket_dir / "procrun.sock"),
            },
        )
        self.base_url = f"http://127.0.0.1:{self.port}"

    def client(self, *args: str) -> subprocess.Popen[str]:
        return client_command(self._socket_dir / "procrun.sock", *args)

    def wait_until_up(self) -> None:
        """gunicorn listening and the Celery worker ready (Beat, when started, is on its way)."""
        self.wait_for_line(
            rf"web\.1 .*Listening at: http://0\.0\.0\.0:{self.port}\b", STARTUP_DEADLINE_SECONDS
        )
        self.wait_for_line(r"worker\.1 .*celery@\S+ ready\.", STARTUP_DEADLINE_SECONDS)

    def submit(self, job_id: str, seconds: float) -> None:
        reply = http("POST", f"{self.base_url}/reports?seconds={seconds}&job_id={job_id}", b"")
        assert reply.status == 202, reply.body
        assert reply.body["job_id"] == job_id

    def report(self, job_id: str) -> dict[str, Any]:
        reply = http("GET", f"{self.base_url}/reports/{job_id}")
        assert reply.status == 200, reply.body
        row: dict[str, Any] = reply.body
        return row

    def wait_until_building(self, job_id: str) -> None:
        """The task has counted its attempt and is at work (it logs so; nothing is polled)."""
        self.wait_for_line(
            rf"worker\.1 .*report {re.escape(job_id)}: building", JOB_DEADLINE_SECONDS
        )

    def wait_until_built(self, job_id: str) -> dict[str, Any]:
        """Celery has logged the task's success; the row as the web process shows it then."""
        self.wait_for_line(
            rf"worker\.1 .*Task reports\.build_report\[{re.escape(job_id)}\] succeeded",
            JOB_DEADLINE_SECONDS,
        )
        return self.report(job_id)

    def stop(self) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(STARTUP_DEADLINE_SECONDS)

    def output(self) -> str:
        """Everything procrun printed, once it has exited."""
        self.rest()
        return self.transcript()

    def __enter__(self) -> DjangoSite:
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        shutil.rmtree(self._socket_dir, ignore_errors=True)


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


def fetch(url: str) -> tuple[int, bytes]:
    """A GET whose answer is not JSON (a static file)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def tables(database: Path) -> set[str]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def applied_migrations(database: Path, app: str) -> list[str]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT name FROM django_migrations WHERE app = ?", (app,))
        return [name for (name,) in rows]


def report_row(database: Path, job_id: str) -> dict[str, object]:
    """A report's row read from the database file, for when no web process is up."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM reports_report WHERE job_id = ?", (job_id,)).fetchone()
    assert row is not None, f"no report {job_id}"
    return dict(row)


def pending_messages(client: redis.Redis, task_id: str) -> list[str]:
    """Messages for `task_id` still waiting in the broker, in the queue or the unacked hash (their
    headers carry the task id in plain JSON)."""
    waiting = [str(m) for m in [*client.lrange(QUEUE_KEY, 0, -1), *client.hvals(UNACKED_KEY)]]
    return [message for message in waiting if task_id in message]


def manage(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python manage.py ARGS` in the example directory, as the release runs it."""
    return _python_in_example(env, "manage.py", *args)


def _python_in_example(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTUP_DEADLINE_SECONDS,
        check=False,
    )


# What Celery and RedBeat end up with, read from the apps themselves rather than from settings.py.
_SHOW_CELERY_CONFIGURATION = """
import json
from redbeat.schedulers import ensure_conf
from mysite.celery import app
beat = ensure_conf(app)
print(json.dumps({
    "broker": app.conf.broker_use_ssl,
    "backend": app.conf.redis_backend_use_ssl,
    "redbeat": beat.redis_use_ssl,
    "redbeat_url": beat.redis_url,
    "redbeat_lock_timeout": beat.lock_timeout,
    "acks_late": app.conf.task_acks_late,
    "reject_on_worker_lost": app.conf.task_reject_on_worker_lost,
    "prefetch": app.conf.worker_prefetch_multiplier,
    "visibility_timeout": app.conf.broker_transport_options["visibility_timeout"],
    "time_limit": app.conf.task_time_limit,
}, default=int))
"""


def celery_configuration(env: Mapping[str, str]) -> dict[str, Any]:
    shown = _python_in_example(env, "-c", _SHOW_CELERY_CONFIGURATION)
    assert shown.returncode == 0, shown.stderr
    configuration: dict[str, Any] = json.loads(shown.stdout)
    return configuration

"""The repository's own Procfile and procrun.toml run by real procrun against a test Redis, and a
small JSON HTTP client for the web process."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.app.redisserver import free_port
from tests.harness import Procrun, client_command

REPO = Path(__file__).resolve().parents[2]
PROCFILE = REPO / "Procfile"
STARTUP_DEADLINE_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 10.0


def app_environment(redis_url: str, **extra: str) -> dict[str, str]:
    """Variables for the app: the test Redis, small concurrency, JSON logs, 1 s ticks."""
    return {
        # `make test` runs pytest without activating the venv: gunicorn and celery live beside
        # this interpreter.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "REDIS_URL": redis_url,
        # Empty means unset for the app: nothing inherited from the developer's shell counts.
        "CELERY_BROKER_URL": "",
        "CELERY_RESULT_BACKEND": "",
        "REDIS_CA_CERTS": "",
        "REDIS_TLS_INSECURE": "",
        "CELERY_CONCURRENCY": "2",
        "WEB_CONCURRENCY": "1",
        "TICK_SECONDS": "1",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        **extra,
    }


class AppFormation(Procrun):
    """`procrun start -f <repo>/Procfile [NAME...]`: the project directory is the repository, so
    its procrun.toml applies; the short shutdown deadline keeps a failing test from hanging. Each
    instance gets a control socket of its own (in a short private directory: socket paths are
    limited to about 100 bytes), so instances never collide with each other or a `make run`."""

    def __init__(
        self,
        directory: Path,
        env: Mapping[str, str],
        *names: str,
        options: tuple[str, ...] = (),
        shutdown_timeout: str | None = "15s",
        config: Path | None = None,
    ) -> None:
        """`shutdown_timeout` None leaves the deadline to the settings file; `config` names a
        procrun.toml to use instead of the repository's."""
        self.port = free_port()
        self._socket_dir = Path(tempfile.mkdtemp(prefix="prs-"))
        deadline = ("--shutdown-timeout", shutdown_timeout) if shutdown_timeout is not None else ()
        settings = ("--config", str(config)) if config is not None else ()
        super().__init__(
            directory,
            PROCFILE.read_text(),  # written to the scratch directory, unused: -f names the real one
            "-f",
            str(PROCFILE),
            *deadline,
            *settings,
            *options,
            *names,
            env={
                **env,
                "PORT": str(self.port),
                "PROCRUN_SOCKET": str(self._socket_dir / "procrun.sock"),
            },
        )
        self.base_url = f"http://127.0.0.1:{self.port}"

    @property
    def socket_path(self) -> Path:
        return self._socket_dir / "procrun.sock"

    def client(self, *args: str) -> subprocess.Popen[str]:
        """A `procrun` client command against this formation, running in the background."""
        return client_command(self.socket_path, *args)

    def wait_until_web_listens(self) -> None:
        self.wait_for_line(
            rf"web\.1 .*Listening at: http://0\.0\.0\.0:{self.port}\b", STARTUP_DEADLINE_SECONDS
        )

    def wait_until_worker_ready(self, instance: str = "worker.1") -> None:
        self.wait_for_line(rf"{re.escape(instance)} .*celery@\S+ ready", STARTUP_DEADLINE_SECONDS)

    def stop(self) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(STARTUP_DEADLINE_SECONDS)

    def __enter__(self) -> AppFormation:
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        shutil.rmtree(self._socket_dir, ignore_errors=True)


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    body: Any


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpReply:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return HttpReply(response.status, dict(response.headers), json.load(response))
    except urllib.error.HTTPError as error:
        with error:
            return HttpReply(error.code, dict(error.headers), json.load(error))


def post_json(url: str, document: object) -> HttpReply:
    return http("POST", url, json.dumps(document).encode(), {"Content-Type": "application/json"})

"""`procrun export` run as a real process on the repository's own project and on a sample that
uses every feature an export translates (a release, http/tcp/exec probes, depends_on, procrun.toml
env, a count, a second type with a PORT), and the generated files read back with PyYAML."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 60.0
SECRET_VALUE = "hunter2-never-written"

SAMPLE_PROCFILE = """\
release: python manage.py migrate
web: gunicorn app:app --bind 0.0.0.0:$PORT
worker: celery -A app worker --loglevel INFO
clock_tick: python -m clock
api: python -m api --port $PORT
"""
SAMPLE_TOML = """\
shutdown_timeout = "25s"

[processes.web]
ready = { http = "http://127.0.0.1:$PORT/health" }
alive = { tcp = "127.0.0.1:$PORT", every = "15s", failures = 2 }
env = { LOG_LEVEL = "info" }

[processes.worker]
grace = "2m"
alive = { exec = "celery -A app inspect ping", every = "60s", timeout = "20s" }
depends_on = { web = "ready" }
count = 2

[processes.api]
ready = { tcp = "127.0.0.1:$PORT" }
"""
SAMPLE_DOCKERFILE = """\
FROM python:3.12-slim
RUN useradd --uid 1234 app
USER 1234:1234
CMD ["procrun", "start"]
"""


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def notes(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("note: ")]


def export(cwd: Path, *args: str) -> Result:
    """`procrun export ARGS` in `cwd`, with no PROCRUN_* or PORT of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCRUN_") and k != "PORT"}
    done = subprocess.run(
        [sys.executable, "-m", "procrun", "export", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def exported(cwd: Path, *args: str) -> Result:
    """An export that must succeed."""
    result = export(cwd, *args)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def sample_project(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Procfile").write_text(SAMPLE_PROCFILE)
    (directory / "procrun.toml").write_text(SAMPLE_TOML)
    (directory / "Dockerfile").write_text(SAMPLE_DOCKERFILE)
    (directory / ".env").write_text(f"API_TOKEN={SECRET_VALUE}\n")
    return directory


def documents(text: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(text) if document is not None]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def unit_lines(text: str) -> Iterator[tuple[str, str, str]]:
    """(section, key, value) of a systemd unit file, in order, comments left out."""
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        yield section, key, value


def unit_values(text: str, key: str) -> list[str]:
    return [value for _, k, value in unit_lines(text) if k == key]

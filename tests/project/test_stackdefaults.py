"""Readiness defaults recognised from the command, and procrun.toml beating them.

Whether the real programs print these lines is checked against the programs elsewhere; here the
recognition is tested."""

from pathlib import Path

import pytest

from procrun.project.config import Config, load_config, settings_for
from procrun.project.stackdefaults import (
    CELERY_READY,
    REDIS_READY,
    UVICORN_READY,
    option_value,
    stack_default,
)
from procrun.settings import Probe, ProbeKind

GUNICORN = Probe(ProbeKind.NOTIFY, origin="default for gunicorn")
CELERY = Probe(ProbeKind.LOG, CELERY_READY, origin="default for a Celery worker")
UVICORN = Probe(ProbeKind.LOG, UVICORN_READY, origin="default for uvicorn")
REDIS = Probe(ProbeKind.LOG, REDIS_READY, origin="default for redis-server")


@pytest.mark.parametrize(
    ("command", "probe"),
    [
        ("gunicorn app:app", GUNICORN),
        ("gunicorn -b 0.0.0.0:$PORT -w 4 app.wsgi", GUNICORN),
        (".venv/bin/gunicorn app:app", GUNICORN),
        ("/usr/local/bin/gunicorn app:app", GUNICORN),
        ("GUNICORN_CMD_ARGS='--workers 2' gunicorn app:app", GUNICORN),
        ("python -m gunicorn app:app", GUNICORN),
        ("python3 -m gunicorn app:app", GUNICORN),
        ("python3.12 -u -m gunicorn app:app", GUNICORN),
        ("python -mgunicorn app:app", GUNICORN),
        ("gunicorn -k uvicorn.workers.UvicornWorker app:app", GUNICORN),
        ("uvicorn app:app --port $PORT", UVICORN),
        ("python -m uvicorn app:app", UVICORN),
        ("uvicorn app:app --log-level debug", UVICORN),
        ("redis-server", REDIS),
        ("redis-server --port 6380 --save ''", REDIS),
        ("/usr/bin/redis-server --loglevel verbose", REDIS),
        ("celery -A proj worker -l info", CELERY),
        ("celery -A proj worker -l INFO", CELERY),
        ("celery -A proj worker -linfo", CELERY),
        ("celery -A proj worker --loglevel=info", CELERY),
        ("celery -A proj worker --loglevel info", CELERY),
        ("celery -A proj worker --loglevel=DEBUG", CELERY),
        ("celery -A proj worker -l Debug", CELERY),
        ("python -m celery -A proj worker -l info", CELERY),
        ("newrelic-admin run-program celery -A proj worker -l info", CELERY),
        ('sh -c "celery -A proj worker -l info"', CELERY),
        ("cd app && celery -A proj worker -l info", CELERY),
        ("celery -A proj worker -l warning -l info", CELERY),  # the last one wins
        # No default: not recognised, or compound, or a program run from a script.
        ("python app.py", None),
        ("python", None),
        ("python -c 'import gunicorn'", None),
        ("cd app && gunicorn app:app", Probe(ProbeKind.NOTIFY, origin="default for gunicorn")),
        ("gunicorn app:app | tee log", None),
        ("$SERVER app:app", None),
        ("celery -A proj beat -l info", None),
        ("gunicornc", None),
        ("redis-cli ping", None),
    ],
)
def test_recognised_programs(command: str, probe: Probe | None) -> None:
    assert stack_default("web", command) == (probe, None)


CELERY_NOTE = (
    'worker: no readiness default: Celery logs "celery@<host> ready." only at --loglevel INFO; '
    'add "-l info" or set ready in procrun.toml'
)


@pytest.mark.parametrize(
    "command",
    [
        "celery -A proj worker",  # the default level, WARNING, does not print it
        "celery -A proj worker -l warning",
        "celery -A proj worker --loglevel=ERROR",
        "celery -A proj worker -lcritical",
        "celery -A proj worker -l info -l warning",
        "celery -A proj worker -l",
    ],
)
def test_a_celery_worker_that_does_not_log_ready_gets_a_note(command: str) -> None:
    assert stack_default("worker", command) == (None, CELERY_NOTE)


def test_the_worker_name_alone_is_no_celery_worker_for_readiness() -> None:
    """A type named worker gets Celery's grace (a harmless guess) but no Celery probe: a log
    probe that never matches would fail the process at ready_timeout."""
    assert stack_default("worker", "python jobs.py -l info") == (None, None)
    assert settings_for("worker", "rq worker -l info", Config()).ready is None


def test_silenced_uvicorn_and_redis_get_notes() -> None:
    assert stack_default("web", "uvicorn app:app --log-level warning") == (
        None,
        'web: no readiness default: uvicorn logs "Uvicorn running on" only at --log-level info; '
        'drop "--log-level warning" or set ready in procrun.toml',
    )
    redis_note = (
        'redis: no readiness default: redis-server logs "Ready to accept connections" to stdout '
        "only at --loglevel notice and without --logfile; set ready in procrun.toml"
    )
    assert stack_default("redis", "redis-server --loglevel warning") == (None, redis_note)
    assert stack_default("redis", "redis-server --logfile /var/log/redis.log") == (None, redis_note)
    assert stack_default("redis", 'redis-server --logfile ""') == (REDIS, None)


@pytest.mark.parametrize(
    ("words", "value"),
    [
        (["-l", "info"], "info"),
        (["-linfo"], "info"),
        (["--loglevel=info"], "info"),
        (["--loglevel", "info"], "info"),
        (["--loglevel"], None),
        (["--logfile", "x"], None),
        (["-A", "proj"], None),
        (["-l", "info", "--loglevel=debug"], "debug"),
    ],
)
def test_option_value(words: list[str], value: str | None) -> None:
    assert option_value(words, "-l", "--loglevel") == value


# --- procrun.toml beats the default ---------------------------------------------------------


def config_of(tmp_path: Path, text: str) -> Config:
    (tmp_path / "procrun.toml").write_text(text)
    return load_config(tmp_path)


def test_settings_for_applies_the_default() -> None:
    assert settings_for("web", "gunicorn app:app", Config()).ready == GUNICORN
    worker = settings_for("worker", "celery -A proj worker -l info", Config())
    assert (worker.ready, worker.grace_seconds) == (CELERY, 600.0)


def test_ready_false_turns_the_default_off(tmp_path: Path) -> None:
    config = config_of(tmp_path, "[processes.web]\nready = false\n")
    assert settings_for("web", "gunicorn app:app", config).ready is None
    assert settings_for("other", "gunicorn app:app", config).ready == GUNICORN


def test_defaults_ready_beats_the_stack_default(tmp_path: Path) -> None:
    config = config_of(tmp_path, '[defaults]\nready = { tcp = "127.0.0.1:$PORT" }\n')
    probe = Probe(ProbeKind.TCP, "127.0.0.1:$PORT", origin=f"{tmp_path}/procrun.toml:2")
    assert settings_for("web", "gunicorn app:app", config).ready == probe
    assert settings_for("worker", "celery -A p worker -l info", config).ready == probe


def test_defaults_ready_false_turns_every_default_off(tmp_path: Path) -> None:
    config = config_of(tmp_path, "[defaults]\nready = false\n[processes.redis]\ngrace = 1\n")
    assert settings_for("web", "gunicorn app:app", config).ready is None
    assert settings_for("redis", "redis-server", config).ready is None


def test_process_ready_beats_the_stack_default(tmp_path: Path) -> None:
    config = config_of(tmp_path, '[processes.web]\nready = { log = "Booting worker" }\n')
    ready = settings_for("web", "gunicorn app:app", config).ready
    assert ready == Probe(ProbeKind.LOG, "Booting worker", origin=f"{tmp_path}/procrun.toml:2")


def test_other_keys_keep_the_default(tmp_path: Path) -> None:
    config = config_of(tmp_path, '[processes.web]\nready_timeout = "2m"\n')
    settings = settings_for("web", "gunicorn app:app", config)
    assert (settings.ready, settings.ready_timeout_seconds) == (GUNICORN, 120.0)

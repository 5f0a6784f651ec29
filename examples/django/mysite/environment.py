"""The environment -> the values mysite/settings.py needs, checked once at import.

Every setting a platform changes comes from a variable (README.md lists them), so one image runs
anywhere. A bad value stops the process with one line naming the variable: settings.py turns
EnvironmentProblem into SystemExit, which Python prints without a traceback.

TLS for Redis follows the reference app (app/settings.py): the options are always passed
explicitly, because kombu given a bare `rediss://` URL turns certificate checks off with a warning
and Celery's result backend refuses to start. Verification is on unless REDIS_TLS_INSECURE says
otherwise; REDIS_CA_CERTS adds a CA bundle to the system's.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_REDIS_SCHEMES = ("redis", "rediss")
# TLS comes from REDIS_CA_CERTS / REDIS_TLS_INSECURE only: kombu and Celery read URL parameters
# differently, so a second source in the URL could make them disagree.
_SSL_URL_PARAMETERS = frozenset({"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile"})
_POSTGRES_SCHEMES = ("postgres", "postgresql")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class EnvironmentProblem(Exception):
    """A variable the project cannot use; the message names it and says what would do."""


@dataclass(frozen=True)
class Environment:
    secret_key: str
    debug: bool
    allowed_hosts: list[str]
    data_dir: Path
    database: dict[str, Any]
    redis_url: str
    broker_url: str
    result_backend: str
    ca_certs: str | None
    tls_insecure: bool
    worker_concurrency: int
    purge_interval_seconds: float
    retention_days: float
    log_level: str

    def redis_ssl(self, url: str) -> dict[str, Any] | None:
        """redis-py's SSL arguments for `url` (None for redis://): the same dict fits Celery's
        broker_use_ssl and redis_backend_use_ssl, and RedBeat's redbeat_redis_use_ssl."""
        if urlsplit(url).scheme != "rediss":
            return None
        if self.tls_insecure:  # encrypted, not authenticated: the user's explicit choice
            return {"ssl_cert_reqs": ssl.CERT_NONE, "ssl_check_hostname": False}
        extra_ca = {"ssl_ca_certs": self.ca_certs} if self.ca_certs else {}
        return {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True, **extra_ca}


def load(env: Mapping[str, str], base_dir: Path) -> Environment:
    read = _Reader(env)
    debug = read.flag("DJANGO_DEBUG")
    secret_key = env.get("DJANGO_SECRET_KEY", "")  # as given: spaces may be part of it
    if not secret_key:
        if not debug:
            raise EnvironmentProblem(
                "DJANGO_SECRET_KEY: not set; set it to a long random string (python -c "
                "'import secrets; print(secrets.token_urlsafe(50))'), or DJANGO_DEBUG=1 for a "
                "development key"
            )
        secret_key = "development only: DJANGO_DEBUG is on"  # never used with DEBUG off
    data_dir = Path(read.text("DATA_DIR") or base_dir / "var")
    try:  # SQLite creates its file, not the directory; collectstatic writes under it too
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EnvironmentProblem(
            f"DATA_DIR: cannot create {data_dir} ({error.strerror}); point it at a writable "
            "directory"
        ) from None
    redis_url = read.redis_url("REDIS_URL", DEFAULT_REDIS_URL)
    ca_certs = read.text("REDIS_CA_CERTS") or None
    if ca_certs is not None and not Path(ca_certs).is_file():
        raise EnvironmentProblem(f"REDIS_CA_CERTS: no such file: {ca_certs}")
    hosts = [h.strip() for h in read.text("DJANGO_ALLOWED_HOSTS").split(",") if h.strip()]
    if render_host := read.text("RENDER_EXTERNAL_HOSTNAME"):  # Render's name for the service
        hosts.append(render_host)
    return Environment(
        secret_key=secret_key,
        debug=debug,
        allowed_hosts=hosts or ["localhost", "127.0.0.1"],
        data_dir=data_dir,
        database=database(read.text("DATABASE_URL"), data_dir),
        redis_url=redis_url,
        broker_url=read.redis_url("CELERY_BROKER_URL", redis_url),
        result_backend=read.redis_url("CELERY_RESULT_BACKEND", redis_url),
        ca_certs=ca_certs,
        tls_insecure=read.flag("REDIS_TLS_INSECURE"),
        worker_concurrency=read.count("CELERY_CONCURRENCY", 2),
        purge_interval_seconds=read.amount("PURGE_INTERVAL_SECONDS", 3600),
        retention_days=read.amount("REPORT_RETENTION_DAYS", 30),
        log_level=read.one_of("LOG_LEVEL", _LOG_LEVELS, "INFO"),
    )


def database(url: str, data_dir: Path) -> dict[str, Any]:
    """DATABASES["default"]: SQLite in DATA_DIR without DATABASE_URL, else what it names."""
    if not url:
        return _sqlite(data_dir / "db.sqlite3")
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return _sqlite(Path(unquote(parts.path)))
    if parts.scheme not in _POSTGRES_SCHEMES:
        raise EnvironmentProblem(
            f"DATABASE_URL: expected postgres://user:password@host:5432/name or "
            f"sqlite:////absolute/path, got a {parts.scheme or 'schemeless'}:// URL"
        )
    try:
        port = parts.port
    except ValueError:
        raise EnvironmentProblem("DATABASE_URL: the port is not a number") from None
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}  # e.g. ?sslmode=require
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        # Persistent connections: a gunicorn worker or a Celery pool process reuses one for
        # up to a minute instead of connecting per request or task.
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }


def _sqlite(path: Path) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            # gunicorn's workers and Celery's pool processes write at once: WAL lets readers go
            # on during a write, IMMEDIATE takes the write lock when a transaction begins (no
            # "database is locked" on a lock upgrade), and a writer waits up to 20 s for it.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }


class _Reader:
    """Typed values out of the environment; every refusal names the variable, quotes what was
    given unless it may hold a password, and says what would do."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str:
        return self._env.get(name, "").strip()

    def flag(self, name: str) -> bool:
        raw = self.text(name)
        if raw.lower() not in _TRUE | _FALSE:
            raise EnvironmentProblem(f"{name}: expected 1/true or 0/false, got {raw!r}")
        return raw.lower() in _TRUE

    def count(self, name: str, default: int) -> int:
        raw = self.text(name) or str(default)
        if not raw.isdigit() or int(raw) == 0:
            raise EnvironmentProblem(f"{name}: expected a positive whole number, got {raw!r}")
        return int(raw)

    def amount(self, name: str, default: float) -> float:
        raw = self.text(name) or str(default)
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not 0 < value < math.inf:  # NaN fails both
            raise EnvironmentProblem(f"{name}: expected a positive number, got {raw!r}")
        return value

    def one_of(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(name).upper() or default
        if value not in choices:
            raise EnvironmentProblem(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    def redis_url(self, name: str, default: str) -> str:
        url = self.text(name) or default
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 -- raises ValueError when the port is not a number
        except ValueError:
            raise EnvironmentProblem(f"{name}: not a valid URL (check the port)") from None
        if parts.scheme not in _REDIS_SCHEMES:
            # The URL itself is never quoted: it may hold a password.
            scheme = parts.scheme or "schemeless"
            raise EnvironmentProblem(f"{name}: expected a redis:// or rediss:// URL, got {scheme}")
        if given := sorted(set(parse_qs(parts.query)) & _SSL_URL_PARAMETERS):
            raise EnvironmentProblem(
                f"{name}: remove {', '.join(given)} from the URL; TLS is configured with "
                "REDIS_CA_CERTS (a CA bundle) and REDIS_TLS_INSECURE (opt out of verification)"
            )
        return url

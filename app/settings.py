"""The environment -> Settings, validated once when a process starts.

TLS is decided here, once, so that every Redis client (Celery's broker and result backend, RedBeat,
the app's own client) gets the same explicit options. Left to themselves they disagree about a
`rediss://` URL with no options: kombu logs a warning and silently turns certificate checks off,
Celery's result backend raises ValueError, redis-py and RedBeat verify. So the options are always
given, and verification is on unless REDIS_TLS_INSECURE says otherwise.
"""

from __future__ import annotations

import enum
import os
import re
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_TICK_SECONDS = 60.0
DEFAULT_WORKER_CONCURRENCY = 2
REDACTED = "***"

# Connection hygiene for managed Redis, shared by every client of the app. Managed services and
# their proxies close idle connections ("Connection closed by server"): a PING before reusing a
# connection idle this long finds out first, and TCP keepalive covers the rest.
HEALTH_CHECK_INTERVAL_SECONDS = 10
# A dead server that never closes the socket must not hang a publish or a query forever.
SOCKET_TIMEOUT_SECONDS = 10.0
SOCKET_CONNECT_TIMEOUT_SECONDS = 5.0
# Literal replacement of a short password would mangle unrelated text (a password "1234" would
# rewrite every port number); URLs are redacted by shape whatever the password's length.
MIN_LITERAL_SECRET_LENGTH = 6

_SCHEMES = ("redis", "rediss")
_TLS_SCHEME = "rediss"
# TLS comes from REDIS_CA_CERTS / REDIS_TLS_INSECURE only: a second source in the URL would let
# the two disagree, and kombu and Celery parse URL parameters differently.
_SSL_URL_PARAMETERS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# scheme://user:password@ -> scheme://user:***@ (the user part may be empty, as in Redis URLs).
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)[^@\s]+@")


class SettingsError(Exception):
    """A variable with a value the app cannot use; the message names the variable."""


class LogFormat(enum.StrEnum):
    JSON = "json"
    TEXT = "text"


class TlsMode(enum.StrEnum):
    PLAIN = "plain"  # redis://, no TLS at all
    VERIFIED = "verified"  # rediss://, certificate and hostname checked
    UNVERIFIED = "unverified"  # rediss:// with REDIS_TLS_INSECURE: encrypted, not authenticated


@dataclass(frozen=True)
class Settings:
    redis_url: str = DEFAULT_REDIS_URL
    broker_url: str = DEFAULT_REDIS_URL
    result_backend: str = DEFAULT_REDIS_URL
    ca_certs: str | None = None
    tls_insecure: bool = False
    log_format: LogFormat = LogFormat.JSON
    log_level: str = "INFO"
    tick_seconds: float = DEFAULT_TICK_SECONDS
    worker_concurrency: int = DEFAULT_WORKER_CONCURRENCY

    @property
    def urls(self) -> dict[str, str]:
        return {
            "redis": self.redis_url,
            "broker": self.broker_url,
            "result_backend": self.result_backend,
        }

    def ssl_options(self, url: str) -> dict[str, Any] | None:
        """redis-py SSLConnection arguments for `url`, or None for plain redis://.

        The same dict fits Celery's broker_use_ssl and redis_backend_use_ssl, RedBeat's
        redbeat_redis_use_ssl and redis.Redis.from_url. ssl_ca_certs adds to the system CAs
        (redis-py starts from ssl.create_default_context()).
        """
        if not is_tls(url):
            return None
        if self.tls_insecure:
            return {"ssl_cert_reqs": ssl.CERT_NONE, "ssl_check_hostname": False}
        options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True}
        if self.ca_certs:
            options["ssl_ca_certs"] = self.ca_certs
        return options

    def redis_options(self, url: str) -> dict[str, Any]:
        """redis-py client arguments for `url`: timeouts, keepalive, health checks and TLS."""
        return {
            "socket_timeout": SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": SOCKET_CONNECT_TIMEOUT_SECONDS,
            "socket_keepalive": True,
            "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
            **(self.ssl_options(url) or {}),
        }

    def tls_mode(self, url: str) -> TlsMode:
        if not is_tls(url):
            return TlsMode.PLAIN
        return TlsMode.UNVERIFIED if self.tls_insecure else TlsMode.VERIFIED

    def secrets(self) -> frozenset[str]:
        """Passwords in the configured URLs, as written and decoded, for the log redactor."""
        found: set[str] = set()
        for url in self.urls.values():
            raw = _raw_password(url)
            if raw:
                found |= {raw, unquote(raw)}
        return frozenset(s for s in found if len(s) >= MIN_LITERAL_SECRET_LENGTH)

    def startup_warnings(self) -> list[str]:
        """Things to say at every start, so a risky setting never goes unnoticed."""
        warnings: list[str] = []
        tls_urls = [name for name, url in self.urls.items() if is_tls(url)]
        if self.tls_insecure and tls_urls:
            warnings.append(
                "REDIS_TLS_INSECURE is set: the Redis server's certificate and hostname are NOT "
                f"verified for {', '.join(tls_urls)} (traffic is encrypted but anyone on the path "
                "can impersonate the server); unset it and set REDIS_CA_CERTS instead"
            )
        if not tls_urls and (self.tls_insecure or self.ca_certs):
            variables = [
                name
                for name, value in (
                    ("REDIS_CA_CERTS", self.ca_certs),
                    ("REDIS_TLS_INSECURE", self.tls_insecure),
                )
                if value
            ]
            warnings.append(
                f"{' and '.join(variables)} set but no URL uses rediss://: TLS is not in use"
            )
        return warnings


def is_tls(url: str) -> bool:
    return urlsplit(url).scheme == _TLS_SCHEME


def load_settings(
    environ: Mapping[str, str] | None = None, stdout_isatty: bool | None = None
) -> Settings:
    """Settings from `environ` (default os.environ); SettingsError names the bad variable."""
    env = os.environ if environ is None else environ
    redis_url = _url(env, "REDIS_URL", DEFAULT_REDIS_URL)
    ca_certs = env.get("REDIS_CA_CERTS") or None
    if ca_certs is not None and not Path(ca_certs).is_file():
        raise SettingsError(f"REDIS_CA_CERTS: no such file: {ca_certs}")
    if stdout_isatty is None:
        stdout_isatty = sys.stdout.isatty()
    default_format = LogFormat.TEXT if stdout_isatty else LogFormat.JSON
    return Settings(
        redis_url=redis_url,
        broker_url=_url(env, "CELERY_BROKER_URL", redis_url),
        result_backend=_url(env, "CELERY_RESULT_BACKEND", redis_url),
        ca_certs=ca_certs,
        tls_insecure=_flag(env, "REDIS_TLS_INSECURE"),
        log_format=_choice(env, "LOG_FORMAT", LogFormat, default_format),
        log_level=_log_level(env),
        tick_seconds=_positive_number(env, "TICK_SECONDS", DEFAULT_TICK_SECONDS),
        worker_concurrency=int(
            _positive_number(env, "CELERY_CONCURRENCY", DEFAULT_WORKER_CONCURRENCY, integer=True)
        ),
    )


def redact_url(url: str) -> str:
    """`redis://:secret@host:6379/0` -> `redis://:***@host:6379/0`."""
    return redact(url)


def redact(text: str, secrets: frozenset[str] = frozenset()) -> str:
    """`text` with URL passwords and the given secrets replaced by ***."""
    text = _URL_CREDENTIALS.sub(rf"\g<head>{REDACTED}@", text)
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: one may contain another
        text = text.replace(secret, REDACTED)
    return text


def _raw_password(url: str) -> str | None:
    netloc = urlsplit(url).netloc
    userinfo, at, _ = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    return userinfo.split(":", 1)[1] or None


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    url = env.get(name) or default
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise SettingsError(f"{name}: not a valid URL ({exc}): {redact(url)}") from None
    if parts.scheme not in _SCHEMES:
        raise SettingsError(f"{name}: expected a redis:// or rediss:// URL, got {redact(url)!r}")
    if given := [p for p in parse_qs(parts.query) if p in _SSL_URL_PARAMETERS]:
        raise SettingsError(
            f"{name}: remove {', '.join(given)} from the URL; TLS is configured with "
            "REDIS_CA_CERTS (a CA bundle) and REDIS_TLS_INSECURE (opt out of verification)"
        )
    return url


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}: expected 1/true or 0/false, got {env[name]!r}")


_E = TypeVar("_E", bound=enum.StrEnum)


def _choice(env: Mapping[str, str], name: str, kind: type[_E], default: _E) -> _E:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        choices = "|".join(member.value for member in kind)
        raise SettingsError(f"{name}: expected {choices}, got {env[name]!r}") from None


def _log_level(env: Mapping[str, str]) -> str:
    level = env.get("LOG_LEVEL", "").strip().upper() or "INFO"
    if level not in _LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL: expected one of {', '.join(_LOG_LEVELS)}, got {level!r}")
    return level


def _positive_number(
    env: Mapping[str, str], name: str, default: float, *, integer: bool = False
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = 0
    if not value > 0 or value == float("inf"):
        kind = "a positive whole number" if integer else "a positive number of seconds"
        raise SettingsError(f"{name}: expected {kind}, got {raw!r}")
    return value

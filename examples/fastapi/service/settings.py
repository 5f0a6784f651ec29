"""The environment -> Settings, read once per process.

  REDIS_URL           broker, result backend and ledger (default redis://127.0.0.1:6379/0);
                      rediss:// for TLS
  REDIS_CA_CERTS      a CA bundle for rediss://, added to the system CAs
  REDIS_TLS_INSECURE  1 to skip certificate and hostname checks (encrypted, not authenticated)

TLS options are always given explicitly for rediss://: left alone, kombu turns certificate checks
off with a warning and Celery's result backend refuses the URL, so the same dict goes to the
broker, the backend and the ledger's client, and it verifies unless REDIS_TLS_INSECURE says not.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Managed Redis and its proxies drop idle connections: a PING before reusing one idle this long
# finds out first, and the timeouts keep a dead server from hanging a request or a task forever.
HEALTH_CHECK_INTERVAL_SECONDS = 10
SOCKET_TIMEOUT_SECONDS = 10.0
SOCKET_CONNECT_TIMEOUT_SECONDS = 5.0

_SCHEMES = frozenset({"redis", "rediss"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
# One source of TLS settings: URL parameters would be read differently by kombu and Celery.
_TLS_URL_PARAMETERS = frozenset({"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile"})


class SettingsError(Exception):
    """A variable the service cannot use; the message names it and the fix, never its value
    (a Redis URL may hold a password)."""


@dataclass(frozen=True)
class Settings:
    redis_url: str = DEFAULT_REDIS_URL
    ca_certs: str | None = None
    tls_insecure: bool = False

    @property
    def tls(self) -> bool:
        return urlsplit(self.redis_url).scheme == "rediss"

    def ssl_options(self) -> dict[str, Any] | None:
        """redis-py's SSL arguments, which Celery's broker_use_ssl and redis_backend_use_ssl take
        as they are; None for plain redis://."""
        if not self.tls:
            return None
        if self.tls_insecure:
            return {"ssl_cert_reqs": ssl.CERT_NONE, "ssl_check_hostname": False}
        options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True}
        if self.ca_certs is not None:
            options["ssl_ca_certs"] = self.ca_certs
        return options

    def connection_options(self) -> dict[str, Any]:
        """Timeouts and keepalive, the same for every Redis client: broker, backend, ledger."""
        return {
            "socket_timeout": SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": SOCKET_CONNECT_TIMEOUT_SECONDS,
            "socket_keepalive": True,
        }

    def redis_options(self) -> dict[str, Any]:
        """Arguments of redis.Redis.from_url(redis_url, ...) for the service's own client."""
        return {
            **self.connection_options(),
            "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
            **(self.ssl_options() or {}),
        }


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    url = env.get("REDIS_URL") or DEFAULT_REDIS_URL
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        raise SettingsError("REDIS_URL: not a valid URL; expected redis://host:port/db") from None
    if parts.scheme not in _SCHEMES:
        raise SettingsError(f"REDIS_URL: expected redis:// or rediss://, got {parts.scheme}://")
    if given := sorted(_TLS_URL_PARAMETERS & parse_qs(parts.query).keys()):
        raise SettingsError(
            f"REDIS_URL: remove {', '.join(given)} from the URL; set REDIS_CA_CERTS (a CA "
            "bundle) or REDIS_TLS_INSECURE=1 instead"
        )
    ca_certs = env.get("REDIS_CA_CERTS") or None
    if ca_certs is not None and not Path(ca_certs).is_file():
        raise SettingsError(f"REDIS_CA_CERTS: no such file: {ca_certs}")
    insecure = env.get("REDIS_TLS_INSECURE", "").strip().lower()
    if insecure not in _TRUE | _FALSE:
        raise SettingsError(f"REDIS_TLS_INSECURE: expected 1 or 0, got {insecure!r}")
    return Settings(redis_url=url, ca_certs=ca_certs, tls_insecure=insecure in _TRUE)


def settings_or_exit() -> Settings:
    """The settings of this process, or one line on stderr and exit 1 (no traceback). An opt-out
    of verification is said at every start, so that it never goes unnoticed."""
    try:
        settings = load_settings()
    except SettingsError as error:
        sys.exit(f"service: {error}")
    if settings.tls and settings.tls_insecure:
        print(
            "service: REDIS_TLS_INSECURE is set: the Redis server's certificate and hostname are "
            "NOT verified; set REDIS_CA_CERTS instead",
            file=sys.stderr,
        )
    return settings

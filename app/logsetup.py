"""structlog for every process of the app: JSON lines in containers, readable text on a terminal.

The stdlib loggers of Celery, gunicorn, kombu and redis-py end in the same root handler, whose
structlog ProcessorFormatter renders them like our own events. Every event passes the redactor
after tracebacks are turned into text and before rendering, so a password in a URL or an
exception message never reaches the output.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from app.settings import LogFormat, Settings, redact, redact_url

logger = structlog.get_logger("app")


class Redactor:
    """A structlog processor that redacts every string value, in nested containers too."""

    def __init__(self, secrets: frozenset[str]) -> None:
        self.secrets = secrets

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        for key, value in event_dict.items():
            event_dict[key] = self._value(value)
        return event_dict

    def _value(self, value: object) -> object:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, Mapping):  # a copy: the caller's own dict stays as it was
            return {key: self._value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._value(item) for item in value)
        return value


def configure_logging(settings: Settings, level: int | str | None = None) -> None:
    """Route all logging of this process to stdout through structlog. Safe to call again (gunicorn
    reconfigures on reload); `level` (Celery's --loglevel) wins over LOG_LEVEL."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if settings.log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # tracebacks become text the redactor sees
            Redactor(settings.secrets()),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level if level is not None else settings.log_level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def log_startup(settings: Settings, role: str) -> None:
    """What this process connects to (passwords redacted), and the warnings due at every start."""
    logger.info(
        "app.configured",
        role=role,
        **{name: redact_url(url) for name, url in settings.urls.items()},
        tls={name: settings.tls_mode(url).value for name, url in settings.urls.items()},
        ca_certs=settings.ca_certs,
    )
    for warning in settings.startup_warnings():
        logger.warning("app.config_warning", role=role, warning=warning)


def gunicorn_logger_class(settings_loader: Callable[[], Settings]) -> type[Any]:
    """A gunicorn Logger class that hands gunicorn's logs to configure_logging's handler and writes
    one structured event per request (method, path, status, duration; no query string, which may
    carry secrets). Built by a function so gunicorn is imported only by the web process."""
    from gunicorn import glogging  # only the web process needs gunicorn

    access = structlog.get_logger("gunicorn.access")

    class GunicornLogger(glogging.Logger):  # type: ignore[misc]  # gunicorn is untyped
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            configure_logging(settings_loader(), level=cfg.loglevel.upper())
            for log in (self.error_log, self.access_log):
                log.handlers = []
                log.propagate = True

        def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
            if self.cfg.accesslog is None:
                return
            status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
            access.info(
                "http.request",
                method=environ.get("REQUEST_METHOD"),
                path=environ.get("PATH_INFO"),
                status=int(status),
                duration_ms=round(request_time.total_seconds() * 1000, 1),
                bytes=getattr(resp, "sent", None),
            )

    return GunicornLogger

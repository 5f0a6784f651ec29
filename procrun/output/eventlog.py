"""procrun's own events (spawned, exited, restarting, escalated, gave up) through structlog.

Rendered lines go to the Relay, not straight to stdout, so they never split a child's line.
Events are dotted and past tense (`process.exited`), with stable keys (`process`, `pid`, ...).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

import structlog

from procrun.output.relay import Relay


class LogFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class _RelayLogger:
    """The structlog 'logger' at the end of the chain: hands each rendered line to the relay."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def msg(self, message: str) -> None:
        self._write(message)

    debug = info = warning = warn = error = critical = exception = fatal = msg


def configure(
    relay: Relay, log_format: LogFormat, *, colour: bool, timestamps: bool, verbose: bool = False
) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
    ]
    if log_format is LogFormat.JSON:
        processors += [
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ]
    else:
        # With timestamps on, the relay's prefix carries the time: one per line, not two.
        processors.append(
            structlog.dev.ConsoleRenderer(colors=colour, pad_event_to=18, pad_level=False)
        )
    logger = _RelayLogger(relay.emit_event)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if verbose else logging.INFO
        ),
        logger_factory=lambda *args: logger,
        cache_logger_on_first_use=False,
    )


def report_loop_error(loop: object, context: dict[str, Any]) -> None:
    """The event loop's exception handler: whatever escapes a callback or a task is one
    structured `procrun.error` event in the stream, never a bare traceback on stdout or stderr."""
    error = context.get("exception")
    structlog.get_logger().error(
        "procrun.error",
        message=context.get("message", "unexpected error"),
        error=f"{type(error).__name__}: {error}" if error is not None else None,
    )

"""Checking a control request off the wire before anything acts on it.

A request is one JSON object with a known verb (protocol.VERB_FIELDS) and only that verb's
fields; each field is then read through one of the functions below, which check its type and
range. Every refusal is a RequestError whose message is the error reply: it quotes what was sent
and says what would be accepted.
"""

from __future__ import annotations

import json
import re
import signal
from typing import Any

from procrun.control.protocol import MAX_LOG_LINES, VERB_FIELDS
from procrun.errors import ProcrunError
from procrun.project.formation import MAX_INSTANCES_PER_TYPE
from procrun.project.values import parse_signal
from procrun.quoting import excerpt

DEFAULT_LOG_LINES = 100
MAX_NAMES = 1000
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # a process type or an instance: web, worker.2
_TYPE = re.compile(r"[A-Za-z0-9_-]{1,100}")  # a process type only, as a Procfile names it
_EXAMPLE = 'send one JSON object per line, e.g. {"verb": "status"}'


class RequestError(ProcrunError):
    """A request the server will not carry out; the message is the error reply."""


def _show(value: object) -> str:
    """A wire value as JSON, shortened and printable."""
    return excerpt(json.dumps(value))


def decode_request(line: bytes) -> dict[str, Any]:
    """The request object, with a known verb and only that verb's fields (values unchecked)."""
    try:
        message = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(f"request is not UTF-8 text: {_EXAMPLE}") from None
    except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays
        raise RequestError(f"request is not valid JSON: {_EXAMPLE}") from None
    if not isinstance(message, dict):
        raise RequestError(f"request is not a JSON object: {_EXAMPLE}")
    verbs = ", ".join(VERB_FIELDS)
    if "verb" not in message:
        raise RequestError(f'request has no "verb": valid verbs are {verbs}')
    verb = message["verb"]
    if not isinstance(verb, str) or verb not in VERB_FIELDS:
        raise RequestError(f"unknown verb {_show(verb)}: valid verbs are {verbs}")
    allowed = VERB_FIELDS[verb]
    for field in message:
        if field != "verb" and field not in allowed:
            valid = ", ".join(allowed) or "none besides verb"
            raise RequestError(f"unknown field {_show(field)} for {verb}: valid fields are {valid}")
    return message


def names_field(message: dict[str, Any], *, required: bool) -> list[str]:
    """`names`: process types or instances; empty (or absent) means all, unless `required`."""
    names = message.get("names", [])
    if (
        not isinstance(names, list)
        or len(names) > MAX_NAMES
        or not all(isinstance(name, str) and _NAME.fullmatch(name) for name in names)
    ):
        raise RequestError(
            f'"names" must be a list of process names like ["web", "worker.2"], got {_show(names)}'
        )
    if required and not names:
        raise RequestError(f'{message["verb"]} needs at least one process name in "names"')
    return names


def signal_field(message: dict[str, Any]) -> signal.Signals:
    """`signal`: required; a name with or without SIG, or a number ("TERM", "SIGHUP", 15)."""
    if "signal" not in message:
        raise RequestError('signal needs a "signal" field, e.g. "TERM", "SIGHUP" or 15')
    value = message["signal"]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RequestError(f'"signal" must be a name or a number, got {_show(value)}')
    try:
        return parse_signal(value, '"signal"')
    except ProcrunError as error:
        raise RequestError(str(error)) from None


def flag_field(message: dict[str, Any], field: str) -> bool:
    """An optional true/false field (`group`, `follow`); false when absent."""
    value = message.get(field, False)
    if not isinstance(value, bool):
        raise RequestError(f'"{field}" must be true or false, got {_show(value)}')
    return value


MAX_WAIT_SECONDS = 24 * 3600.0


def wait_field(message: dict[str, Any]) -> float | None:
    """`wait`: how many seconds `status` may wait for readiness first; None when absent."""
    value = message.get("wait")
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not 0 <= value <= MAX_WAIT_SECONDS:
        raise RequestError(
            f'"wait" must be a number of seconds from 0 to {MAX_WAIT_SECONDS:g}, got {_show(value)}'
        )
    return float(value)


def lines_field(message: dict[str, Any]) -> int:
    """`lines`: how many recent log lines, 0 to MAX_LOG_LINES; DEFAULT_LOG_LINES when absent."""
    value = message.get("lines", DEFAULT_LOG_LINES)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LOG_LINES:
        raise RequestError(
            f'"lines" must be a whole number from 0 to {MAX_LOG_LINES}, got {_show(value)}'
        )
    return value


def counts_field(message: dict[str, Any]) -> dict[str, int]:
    """`counts`: required; process types and how many instances each, `{"worker": 3}`."""
    counts = message.get("counts")
    if not isinstance(counts, dict) or not counts or len(counts) > MAX_NAMES:
        raise RequestError(
            f'"counts" must be an object of process types and counts like {{"worker": 3}}, '
            f"got {_show(counts)}"
        )
    for kind, count in counts.items():
        if problem := scale_problem(kind, count):
            raise RequestError(problem)
    return dict(counts)


def scale_problem(kind: str, count: object) -> str | None:
    """What is wrong with scaling `kind` to `count`, as far as the request alone can tell (the
    supervisor knows which types exist); None when nothing is. `procrun scale` asks it too."""
    if not _TYPE.fullmatch(kind):
        what = "an instance" if _NAME.fullmatch(kind) else "not a process type"
        return f"{_show(kind)} is {what}: scale takes process types, e.g. worker=3"
    if (
        isinstance(count, bool)
        or not isinstance(count, int)
        or not 0 <= count <= MAX_INSTANCES_PER_TYPE
    ):
        return (
            f'count for "{kind}" must be a whole number from 0 to {MAX_INSTANCES_PER_TYPE}, '
            f"got {_show(count)}"
        )
    return None

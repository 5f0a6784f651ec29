"""The control socket's wire protocol: the verbs, their limits, one line of JSON each way, and
the typed shape of every result.

One Unix stream socket per supervisor (see paths.py for where):

- The client sends one line of JSON, an object `{"verb": ..., <fields>}`, at most
  MAX_REQUEST_BYTES long. The verbs and their fields are VERB_FIELDS; nothing else is accepted.
- The server answers one line, `{"ok": true, "result": {...}}` or `{"ok": false, "error": "..."}`,
  and closes. `logs` with `follow: true` answers `{"ok": true, "result": {"follow": true}}` once
  accepted, then one line `{"process": "web.1", "line": "..."}` per log line until the client
  disconnects or the supervisor stops; an error while streaming arrives as an `ok: false` line.
- Results: info is an Info; status a StatusResult (with `wait: seconds`, once every process
  chosen is ready, or the time is up); start/stop/restart {processes: [...],
  project_dir} (start also already_running: [...]); signal
  {signal, results}; logs {lines: [{process, line}, ...]}; shutdown {shutting_down: true} (with
  `force`, as a second Ctrl-C); scale a ScaleResult.
- `scale` takes `counts`, an object of process types and instance counts, `{"worker": 3}`: each
  type gets that many instances, the new ones built and started as `start` would have (PS, PORT),
  the highest-numbered stopped through their own stop sequence and then no longer supervised.
  It answers once those have stopped. The counts last until procrun stops.

The server writes these types and the status view reads them, so both sides agree on every key.
Imported by every short-lived command: standard library only, no asyncio.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from procrun.errors import ProcrunError

MAX_REQUEST_BYTES = 64 * 1024
MAX_LOG_LINES = 10_000

# The whole command surface. The server dispatches on these literal strings with `match`; no
# name that came off the wire is ever looked up as an attribute (supervisord's CVE-2017-11610).
VERB_FIELDS: Mapping[str, tuple[str, ...]] = {
    "info": (),
    "status": ("names", "wait"),
    "start": ("names",),
    "stop": ("names",),
    "restart": ("names",),
    "signal": ("names", "signal", "group"),
    "logs": ("names", "lines", "follow"),
    "shutdown": ("force",),
    "scale": ("counts",),
}


class Info(TypedDict):
    pid: int
    project_dir: str
    version: str
    started_at: float
    socket: str


class SupervisorRow(TypedDict):
    pid: int
    project_dir: str
    version: str
    uptime_seconds: float
    shutdown_timeout_seconds: float | None
    shutting_down: bool


class ProcessRow(TypedDict):
    name: str
    state: str
    pid: int | None
    uptime_seconds: float | None
    restarts: int
    last_exit: str | None
    last_exit_status: int | None
    reason: str | None
    oneshot: bool
    ready: bool
    """Its readiness probe passed (or, without one, it is up for min_uptime): RUNNING."""
    waiting: str | None
    """What a process not ready yet waits for: `tcp 127.0.0.1:5000, 3.2 s`, `redis ready`."""
    status_text: str | None
    """Its last sd_notify STATUS= line."""
    rss_bytes: int | None
    cpu_percent: float | None
    tree_processes: int | None


class StatusResult(TypedDict):
    supervisor: SupervisorRow
    processes: list[ProcessRow]


class TypeScaled(TypedDict):
    type: str
    before: int
    """Instances supervised before: worker.1 to worker.<before>."""
    after: int
    started: list[str]
    stopped: list[str]
    """Stopped and no longer supervised, highest-numbered first."""


class ScaleResult(TypedDict):
    scaled: list[TypeScaled]
    project_dir: str


class ControlError(ProcrunError):
    """The supervisor answered with an error (bad request, unknown process name, ...)."""


def encode(message: Mapping[str, Any]) -> bytes:
    """One protocol line. ASCII-only JSON, so lone surrogates from undecodable output survive."""
    return json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"


def checked_request(payload: Mapping[str, Any]) -> bytes:
    """The request line, refused before sending if the server would refuse it for its length."""
    data = encode(payload)
    if len(data) > MAX_REQUEST_BYTES:
        raise ProcrunError(f"request too long ({len(data)} bytes, at most {MAX_REQUEST_BYTES})")
    return data


def decode_reply(line: bytes, path: Path) -> dict[str, Any]:
    """The result of a reply line; ControlError for an error reply, ProcrunError for nonsense."""
    if not line.endswith(b"\n"):
        raise ProcrunError(
            f"the supervisor at {path} closed the connection without a reply (is it shutting down?)"
        )
    try:
        reply = json.loads(line)
    except ValueError:
        raise ProcrunError(f"the supervisor at {path} sent an unreadable reply") from None
    if isinstance(reply, dict):
        result, error = reply.get("result"), reply.get("error")
        if reply.get("ok") is True and isinstance(result, dict):
            return result
        if reply.get("ok") is False and isinstance(error, str):
            raise ControlError(error)
    raise ProcrunError(f"the supervisor at {path} sent an unexpected reply")


def decode_stream_item(line: bytes, path: Path) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except ValueError:
        raise ProcrunError(f"the supervisor at {path} sent an unreadable line") from None
    if not isinstance(item, dict):
        raise ProcrunError(f"the supervisor at {path} sent an unexpected line")
    if "ok" in item:  # an error that ended the stream
        decode_reply(line, path)
    return item

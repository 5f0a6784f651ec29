"""`procrun status` as text, and the health verdict its exit code carries. Pure functions over the
status result the supervisor sends."""

from __future__ import annotations

from collections.abc import Sequence

from procrun.control.protocol import ProcessRow, StatusResult
from procrun.errors import EXIT_OK, EXIT_UNHEALTHY

COLUMNS = ("NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "RSS", "CPU%", "REASON")


def is_healthy(process: ProcessRow) -> bool:
    """Running, or a one-shot that finished successfully."""
    if process["state"] == "RUNNING":
        return True
    return bool(
        process["oneshot"] and process["state"] == "EXITED" and process["last_exit_status"] == 0
    )


def health_exit_code(status: StatusResult) -> int:
    healthy = all(is_healthy(p) for p in status["processes"])
    return EXIT_OK if healthy else EXIT_UNHEALTHY


def render_status(status: StatusResult) -> list[str]:
    supervisor = status["supervisor"]
    deadline = supervisor["shutdown_timeout_seconds"]
    header = (
        f"procrun {supervisor['version']} for {supervisor['project_dir']}: "
        f"pid {supervisor['pid']}, "
        f"up {duration(supervisor['uptime_seconds'])}, "
        f"shutdown deadline {'none' if deadline is None else duration(deadline)}"
    )
    if supervisor["shutting_down"]:
        header += ", shutting down"
    rows = [COLUMNS, *(_row(p) for p in status["processes"])]
    return [header, *_table(rows)]


def _row(process: ProcessRow) -> tuple[str, ...]:
    return (
        process["name"],
        process["state"],
        _or_dash(process["pid"]),
        duration(process["uptime_seconds"]) if process["uptime_seconds"] is not None else "-",
        str(process["restarts"]),
        process["last_exit"] or "-",
        size(process["rss_bytes"]) if process["rss_bytes"] is not None else "-",
        _or_dash(process["cpu_percent"]),
        _notes(process),
    )


def _notes(process: ProcessRow) -> str:
    """The REASON column: why it is in its state, what it waits for, what it says it does."""
    waiting = process["waiting"]
    notes = [process["reason"], waiting and f"waiting: {waiting}", process["status_text"]]
    return "; ".join(note for note in notes if note)


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def duration(seconds: float) -> str:
    """`45s`, `3m05s`, `2h03m`, `4d02h`: short and sortable by eye."""
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.0f}s" if seconds >= 1 or seconds == 0 else f"{seconds:.1f}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")

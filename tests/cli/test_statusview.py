"""`procrun status` rendering and its health verdict, as pure functions."""

from typing import Any, cast

import pytest

from procrun.cli.statusview import duration, health_exit_code, render_status, size
from procrun.control.protocol import ProcessRow, StatusResult, SupervisorRow


def row(name: str, state: str, **extra: Any) -> ProcessRow:
    base = {
        "name": name,
        "state": state,
        "pid": 42 if state == "RUNNING" else None,
        "uptime_seconds": 125.0 if state == "RUNNING" else None,
        "restarts": 0,
        "last_exit": None,
        "last_exit_status": None,
        "reason": None,
        "oneshot": False,
        "ready": False,
        "waiting": None,
        "status_text": None,
        "rss_bytes": 50 * 1024 * 1024 if state == "RUNNING" else None,
        "cpu_percent": 1.5 if state == "RUNNING" else None,
        "tree_processes": 1,
    }
    return cast(ProcessRow, {**base, **extra})


def status(*rows: ProcessRow) -> StatusResult:
    supervisor: SupervisorRow = {
        "pid": 1,
        "project_dir": "/srv/app",
        "version": "0.1.0",
        "uptime_seconds": 3725.0,
        "shutdown_timeout_seconds": 25.0,
        "shutting_down": False,
    }
    return {"supervisor": supervisor, "processes": list(rows)}


@pytest.mark.parametrize(
    ("rows", "code"),
    [
        ((row("web.1", "RUNNING"),), 0),
        (
            (row("web.1", "RUNNING"), row("release.1", "EXITED", oneshot=True, last_exit_status=0)),
            0,
        ),
        ((row("web.1", "RUNNING"), row("once.1", "EXITED", oneshot=True, last_exit_status=2)), 3),
        ((row("web.1", "STARTING"),), 3),
        ((row("web.1", "STOPPED", reason="stopped on request"),), 3),
        ((row("web.1", "FATAL"),), 3),
        ((row("web.1", "EXITED", last_exit_status=0),), 3),  # a long-running process is not done
    ],
)
def test_health_exit_code(rows: tuple[ProcessRow, ...], code: int) -> None:
    assert health_exit_code(status(*rows)) == code


def test_render_status_table() -> None:
    lines = render_status(
        status(
            row("web.1", "RUNNING"),
            row("worker.1", "FATAL", last_exit="exited with code 1", restarts=10, reason="gave up"),
        )
    )
    assert lines[0] == "procrun 0.1.0 for /srv/app: pid 1, up 1h02m, shutdown deadline 25s"
    assert lines[1].split() == [
        "NAME",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "LAST",
        "EXIT",
        "RSS",
        "CPU%",
        "REASON",
    ]
    assert lines[2].split() == ["web.1", "RUNNING", "42", "2m05s", "0", "-", "50.0", "MiB", "1.5"]
    assert lines[3].split()[:2] == ["worker.1", "FATAL"]
    assert lines[3].endswith("gave up")


def test_durations_and_sizes() -> None:
    assert [duration(s) for s in (0, 0.4, 45, 185, 7380, 180000)] == [
        "0s",
        "0.4s",
        "45s",
        "3m05s",
        "2h03m",
        "2d02h",
    ]
    assert [size(n) for n in (512, 2048, 5 * 1024**2, 3 * 1024**3)] == [
        "512 B",
        "2.0 KiB",
        "5.0 MiB",
        "3.0 GiB",
    ]

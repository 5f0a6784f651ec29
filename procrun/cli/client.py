"""Asking a running supervisor: find its socket, send one request, and for `status` print the
answer. Free of click so that a plain `procrun status` can run without it (procrun/cli/entry.py);
the click commands in procrun/cli/remote.py call the same functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from procrun.cli.statusview import health_exit_code, render_status
from procrun.control.client import call, find_socket

PROCFILE_NAME = "Procfile"


def project_root(root: Path | None) -> Path | None:
    """The project a client command is for: -d/--root, else the nearest directory from here
    upwards that holds a Procfile, as git finds .git; None when there is none."""
    if root is not None:
        return root.resolve()
    here = Path.cwd().resolve()
    return next((d for d in (here, *here.parents) if (d / PROCFILE_NAME).is_file()), None)


def supervisor_socket(socket: str | None, root: Path | None) -> Path:
    return find_socket(socket, project_dir=project_root(root))


def ask(
    socket: str | None, root: Path | None, payload: dict[str, Any], timeout: float | None
) -> Any:
    return call(supervisor_socket(socket, root), payload, timeout=timeout)


STATUS_TIMEOUT_SECONDS = 5.0


def show_status(
    socket: str | None,
    root: Path | None,
    as_json: bool,
    names: tuple[str, ...],
    wait: float | None = None,
) -> int:
    """Print the status of every process (or `names`); the health exit code (0 or 3). With
    `wait`, the supervisor answers once all are ready, or after `wait` seconds."""
    payload: dict[str, Any] = {"verb": "status", "names": list(names)}
    if wait is not None:
        payload["wait"] = wait
    result = ask(socket, root, payload, timeout=STATUS_TIMEOUT_SECONDS + (wait or 0.0))
    lines = [json.dumps(result, indent=2)] if as_json else render_status(result)
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return health_exit_code(result)

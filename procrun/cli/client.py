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


def ask(
    socket: str | None, root: Path | None, payload: dict[str, Any], timeout: float | None
) -> Any:
    path = find_socket(socket, project_dir=(root or Path.cwd()).resolve())
    return call(path, payload, timeout=timeout)


def show_status(
    socket: str | None, root: Path | None, as_json: bool, names: tuple[str, ...]
) -> int:
    """Print the status of every process (or `names`); the health exit code (0 or 3)."""
    result = ask(socket, root, {"verb": "status", "names": list(names)}, timeout=5.0)
    lines = [json.dumps(result, indent=2)] if as_json else render_status(result)
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return health_exit_code(result)

"""ProcessSpecs for tests that drive the core directly, built as the formation builds them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from procrun.project.shell import shell_argv
from procrun.settings import ProcessSettings, ProcessSpec


def process_spec(
    name: str,
    command: str,
    *,
    cwd: Path,
    settings: ProcessSettings | None = None,
    env: Mapping[str, str] | None = None,
) -> ProcessSpec:
    """`name` is an instance name (`worker.1`): its kind and index come from it."""
    kind, _, index = name.rpartition(".")
    return ProcessSpec(
        name=name,
        kind=kind,
        index=int(index),
        command=command,
        argv=shell_argv(command),
        env=dict(os.environ) if env is None else env,
        cwd=cwd,
        settings=settings or ProcessSettings(),
    )

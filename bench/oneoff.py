"""Scenario 13: a one-off command (issue 18, item 1: `procrun run` adds at most 30 ms).

`procrun run true` and `honcho run true` in a project directory (a Procfile and an empty .env),
against exec'ing /bin/true directly: each call timed from launch to exit, the client's
interpreter start-up included.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.runs import Sizes
from bench.table import Column, Table
from bench.tools import BIN, DIRECT, HONCHO, PROCRUN

CALLS_PER_REPETITION = 10


def _timed(argv: list[str], cwd: Path) -> float:
    started = time.monotonic()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return 1000 * (time.monotonic() - started)


def run_overhead(sizes: Sizes) -> Table:
    table = Table(
        number=13,
        title="One-off command",
        setup=(
            "`procrun run true` and `honcho run true` in a project directory (a one-line "
            f"Procfile, an empty .env) against /bin/true run directly; {CALLS_PER_REPETITION} "
            "calls per repetition, each from launch to exit. *over direct*: the repetition's "
            "median minus the direct run's median in the same repetition."
        ),
        columns=[Column("ms", "launch to exit (ms)"), Column("over", "over direct (ms)")],
    )
    commands = {
        DIRECT.name: ["/bin/true"],
        PROCRUN.name: [str(BIN / "procrun"), "run", "true"],
        HONCHO.name: [str(BIN / "honcho"), "run", "true"],
    }
    with tempfile.TemporaryDirectory(prefix="procrun-bench-") as directory:
        project = Path(directory)
        (project / "Procfile").write_text("web: sleep 3600\n")
        (project / ".env").write_text("")
        for _ in range(sizes.reps):
            medians = {}
            for name, argv in commands.items():
                calls = [_timed(argv, project) for _ in range(CALLS_PER_REPETITION)]
                medians[name] = statistics.median(calls)
                table.add(name, "ms", medians[name])
            for name in (PROCRUN.name, HONCHO.name):
                table.add(name, "over", medians[name] - medians[DIRECT.name])
    table.say(DIRECT.name, "over", "\N{EN DASH}")
    return table

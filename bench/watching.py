"""Scenario 10: restart on file change. From a write to a watched file to the stop signal
reaching the process, with the default debounce (100 ms), and what watching costs while idle.

Only procrun: honcho and supervisord have no watch mode (teams wrap processes in watchmedo).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.runs import RunFailed, Sizes, launch
from bench.table import Column, Table
from bench.tools import BIN, PROGRAMS, Program, Setup, Tool

WATCHED_FILE = "code.py"


class ProcrunWatching(Tool):
    name = "procrun --watch"
    helpers = ("procrun-undertaker",)

    def __init__(self, stamps: Path) -> None:
        self._stamps = stamps

    def setup(self, workdir: Path, programs: list[Program]) -> Setup:
        program = f"{sys.executable} -I -S {PROGRAMS / 'watched.py'} {self._stamps}"
        (workdir / "Procfile").write_text(f"watched: {program}\n")
        (workdir / "procrun.toml").write_text(f'[processes.watched]\nwatch = ["{WATCHED_FILE}"]\n')
        (workdir / WATCHED_FILE).write_text("# edited by the benchmark\n")
        return Setup(
            argv=[str(BIN / "procrun"), "start", "--watch", "-f", str(workdir / "Procfile")],
            status_argv=None,
            settled=rb"process\.running .*process=(\S+)",
        )


def watch_latency(sizes: Sizes) -> Table:
    edits = max(3, sizes.reps * 4)
    window = sizes.idle_seconds
    table = Table(
        number=10,
        title="Watch",
        setup=(
            f"`procrun start --watch`, one process watching one file (`watched.py`). {edits} "
            "times: append a line to the file, and measure ms from just before the write to "
            "the moment the process's SIGTERM handler runs (its time.monotonic(), written to a "
            "file), with the default 100 ms debounce; each time the process is back before the "
            f"next write. Then {window:g} s idle: procrun's wake-ups (every thread, the "
            "watcher's included)."
        ),
        columns=[
            Column("latency", "write to stop signal (ms)"),
            Column("rate", "idle wake-ups/s, watching", 2),
        ],
    )
    stamps = Path(tempfile.mkdtemp(prefix="pbw-"))
    try:
        with launch(ProcrunWatching(stamps), []) as run:
            ready = run.launched.output.matches(rb"READY watched (\d+)")
            started = run.launched.output.matches(rb"watch\.started")
            run.wait_for("the watcher", lambda: len(started) >= 1 and len(ready) >= 1)
            for edit in range(edits):
                written = time.monotonic()
                with (run.workdir / WATCHED_FILE).open("a") as file:
                    file.write(f"# edit {edit}\n")
                stamp = stamps / f"term-{edit}"
                count = edit + 2  # the first run and one more per edit
                run.wait_for(f"restart {edit + 1}", lambda: len(ready) >= count)  # noqa: B023
                table.add(run.tool.name, "latency", 1000 * (float(stamp.read_text()) - written))
            before = run.usage()
            began = time.monotonic()
            run.launched.pump_for(window)  # the scenario is the duration itself
            _, switches = run.usage().minus(before)
            table.add(run.tool.name, "rate", switches / (time.monotonic() - began))
            run.stop()
    except FileNotFoundError as error:
        raise RunFailed(f"no stop-signal stamp: {error}") from None
    finally:
        for path in stamps.iterdir():
            path.unlink()
        stamps.rmdir()
    table.notes.append(
        "watchfiles' Rust loop looks for new events every `step` (50 ms) while it waits, so "
        "watching costs about 20 wake-ups a second; without --watch it is not loaded at all."
    )
    return table

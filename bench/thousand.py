"""Scenario 11: a thousand processes (issue 18, item 2), every line counted.

The formation of scenario 8 (`chatty.sh`: three lines carrying its pid, then `exec sleep`) at five
times its size: 1,000 instances in the full run, 100 in the smoke run. Per tool: launch to the last
READY line, memory once all are up, a status round trip and (procrun) `status --json` with its
rows counted, lines lost or garbled, then SIGTERM: when the last child ended (a pidfd on each)
and when the tool exited after it.
"""

from __future__ import annotations

import json
import resource
import subprocess
import tempfile
import time
from collections.abc import Sequence

from bench.footprint import _add_memory, _count_lines, _memory_columns, _wait_for_lines
from bench.runs import Run, Sizes, launch
from bench.table import Column, Table
from bench.tools import PEERS, PROCRUN, Program, Tool, sh

SCALE_FACTOR = 5  # scenario 8's size times this: 1,000 in the full run
MAX_REPS = 3  # a repetition starts 3,000 processes
OWN_FDS = 64  # the benchmark's own descriptors besides one pidfd per child


def _tools() -> list[Tool]:
    return list(PEERS)


def _room_for_pidfds(count: int) -> str | None:
    """The benchmark watches every child through a pidfd: make room under its own soft limit
    (the tools inherit it, as they would a shell's `ulimit -n`). What was done, for the notes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + OWN_FDS
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return None
    raised = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    return f"the benchmark raised its soft limit of open files from {soft} to {raised}"


def _json_status(run: Run, argv: Sequence[str]) -> tuple[float, int]:
    """`procrun status --json` to its end, reading the supervisor's output meanwhile: its wall
    time and the number of rows it listed (-1 when it printed no valid document)."""
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        client = subprocess.Popen(
            list(argv), cwd=run.workdir, env=run.env, stdin=subprocess.DEVNULL, stdout=out
        )
        run.launched.watch_exit(client.pid)
        run.launched.pump(lambda: run.launched.exits.get(client.pid) is not None, 30.0)
        ended = run.launched.exits.get(client.pid) or time.monotonic()
        client.wait(timeout=30.0)
        out.seek(0)
        try:
            rows = len(json.loads(out.read())["processes"])
        except (ValueError, KeyError, TypeError):
            rows = -1
    return ended - started, rows


def thousand(sizes: Sizes) -> Table:
    count = SCALE_FACTOR * sizes.scale_count
    table = Table(
        number=11,
        title=f"{count:,} processes",
        setup=(
            f"{count:,} instances of `bench/programs/chatty.sh` (scenario 8's formation): procrun "
            f"`-c s={count}`, honcho `-c s={count}`, supervisord `numprocs={count}`. *start*: "
            "launch to the last READY line; memory once all are up; one status call (procrun "
            "`status`, `supervisorctl status`) and procrun's `status --json`, its rows counted; "
            f"lines lost or garbled out of {3 * count:,}; then SIGTERM to the tool: *children "
            "gone* when the last child ended, *after children* from then to the tool's exit "
            f"(each from a pidfd). {min(sizes.reps, MAX_REPS)} repetition(s)."
        ),
        columns=[
            Column("start", "start (ms)", 0),
            *_memory_columns(),
            Column("status", "status (ms)", 0),
            Column("json", "status --json (ms)", 0),
            Column("rows", "--json rows", 0),
            Column("complete", "--json complete (%)", 0),
            Column("lost", "lines lost", 0),
            Column("garbled", "lines garbled", 0),
            Column("children", "children gone (ms)", 0),
            Column("after", "after children (ms)", 0),
        ],
    )
    if (raised := _room_for_pidfds(count)) is not None:
        table.notes.append(raised)
    programs = [Program("s", sh("chatty.sh", "s"), count=count)]
    for _ in range(min(sizes.reps, MAX_REPS)):
        for tool in _tools():
            with launch(tool, programs) as run:
                _measure(table, run, count)
    table.say("honcho", "status", "none")
    for row in ("honcho", "supervisord"):
        for column in ("json", "rows", "complete"):
            table.say(row, column, "\N{EN DASH}")
    return table


def _measure(table: Table, run: Run, count: int) -> None:
    name = run.tool.name
    ready = run.wait_ready(count)
    table.add(name, "start", 1000 * (max(ready.values()) - run.launched.started_at))
    _wait_for_lines(run, count)
    _add_memory(table, name, run.usage())
    if run.setup.status_argv is not None:
        seconds, _ = run.status()
        table.add(name, "status", 1000 * seconds)
    if run.tool is PROCRUN:
        assert run.setup.status_argv is not None
        seconds, rows = _json_status(run, [*run.setup.status_argv, "--json"])
        table.add(name, "json", 1000 * seconds)
        table.add(name, "rows", rows)
        table.add(name, "complete", 100 if rows == count else 0)
    sent, last_child, exited = run.timed_stop([int(pid) for pid in ready])
    table.add(name, "children", 1000 * (last_child - sent))
    table.add(name, "after", 1000 * (exited - last_child))
    lost, garbled = _count_lines(run.tool, run.launched.output.data(), 3 * count)
    table.add(name, "lost", lost)
    table.add(name, "garbled", garbled)

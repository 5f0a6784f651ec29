"""Scenarios 5-8: what a supervisor costs while it waits, starts, answers and scales.

5. Idle cost: 3 sleeping children; once every tool reports its processes running, its memory,
   CPU time and context switches over a fixed window (the tools run side by side in that window:
   each is measured by its own counters).
6. Start latency: launch to every child's READY line.
7. Status latency: the status command's round trip, client start-up included.
8. Scale: 200 small processes: start time, memory, status time, lines relayed, stop time.
"""

from __future__ import annotations

import contextlib
import re
import signal
import time

from bench import lines, procfs, tools
from bench.runs import Run, Sizes, launch
from bench.table import Column, Table
from bench.tools import HONCHO, PEERS, PROCRUN, SUPERVISORD, TINI, Program, Tool, sh

CHILDREN = ("c1", "c2", "c3")
SCALE_LINES_TIMEOUT_SECONDS = 30.0


def _tools() -> list[Tool]:
    return [*PEERS, *([TINI] if TINI.available() else [])]


def _ready_programs() -> list[Program]:
    return [Program(c, sh("ready.sh", c)) for c in CHILDREN]


def _memory_columns() -> list[Column]:
    return [
        Column("rss", "RSS (MiB)"),
        Column("rss_all", "RSS, all its processes (MiB)"),
        Column("procs", "processes", 0),
    ]


def _add_memory(table: Table, row: str, usage: procfs.Usage) -> None:
    table.add(row, "rss", usage.rss_main_kib / 1024)
    table.add(row, "rss_all", usage.rss_total_kib / 1024)
    table.add(row, "procs", usage.processes)


def idle_cost(sizes: Sizes) -> Table:
    window = sizes.idle_seconds
    table = Table(
        number=5,
        title="Idle cost",
        setup=(
            f"3 sleeping children (`ready.sh`). Once the tool reports them running (procrun "
            "`process.running`, supervisord `entered RUNNING state`; honcho and tini have no such "
            f"state: their READY lines), its cost over {window:g} s of idling: RSS of its main "
            "process, RSS summed over its own processes (honcho relays each child through a "
            "forked copy of itself; forks share pages, so the sum overstates), CPU time and "
            "context switches (voluntary + involuntary, every thread: each is a wake-up). "
            "The tools idle side by side in the same window."
        ),
        columns=[
            *_memory_columns(),
            Column("hwm", "peak RSS (MiB)"),
            Column("cpu", "CPU (ms)"),
            Column("wakeups", "wake-ups", 0),
            Column("rate", "wake-ups/s", 2),
        ],
    )
    for _ in range(sizes.reps):
        with contextlib.ExitStack() as stack:
            runs = [stack.enter_context(launch(tool, _ready_programs())) for tool in _tools()]
            for run in runs:
                run.wait_settled(3)
            before = [run.usage() for run in runs]
            started = time.monotonic()
            time.sleep(window)  # the scenario is the duration itself
            elapsed = time.monotonic() - started
            for run, earlier in zip(runs, before, strict=True):
                now = run.usage()
                cpu, switches = now.minus(earlier)
                _add_memory(table, run.tool.name, now)
                table.add(run.tool.name, "hwm", now.hwm_main_kib / 1024)
                table.add(run.tool.name, "cpu", 1000 * cpu)
                table.add(run.tool.name, "wakeups", switches)
                table.add(run.tool.name, "rate", switches / elapsed)
    return table


def start_latency(sizes: Sizes) -> Table:
    table = Table(
        number=6,
        title="Start latency",
        setup=(
            "3 children (`ready.sh`, a shell that prints READY at once). ms from launching the "
            "tool to the first and to the last child's READY line, as read from its stdout: the "
            "tool's own interpreter start-up and imports included. *asyncio floor*: "
            "`bench/programs/floor.py`, not a supervisor: asyncio imported, the Procfile read, "
            "three shells started and their lines relayed, nothing else (no configuration, no "
            "restarts, no control socket), the least any asyncio tool pays on this machine."
        ),
        columns=[Column("first", "first child (ms)"), Column("all", "all children (ms)")],
    )
    for _ in range(sizes.reps):
        for tool in [*_tools(), tools.ASYNCIO_FLOOR]:
            with launch(tool, _ready_programs()) as run:
                arrivals = run.wait_ready(3).values()
                table.add(tool.name, "first", 1000 * (min(arrivals) - run.launched.started_at))
                table.add(tool.name, "all", 1000 * (max(arrivals) - run.launched.started_at))
                run.stop()
    if TINI.available():
        table.notes.append("tini starts `sh -c 'a & b & c & wait'`.")
    return table


def _status(table: Table, run: Run, calls: int, key: str = "status") -> None:
    for _ in range(calls):
        seconds, code = run.status()
        table.add(run.tool.name, key, 1000 * seconds)
        table.add(run.tool.name, f"{key}_code", code)


def status_latency(sizes: Sizes) -> Table:
    table = Table(
        number=7,
        title="Status latency",
        setup=(
            f"3 running children; `procrun status` (in the project directory) and "
            f"`supervisorctl -c supervisord.conf status`, {sizes.status_calls} call(s) per "
            "repetition, each timed from the client's launch to its exit (its interpreter "
            "start-up included), once the tool reports every process running."
        ),
        columns=[Column("status", "round trip (ms)"), Column("status_code", "exit code", 0)],
    )
    for _ in range(sizes.reps):
        for tool in (PROCRUN, SUPERVISORD):
            with launch(tool, _ready_programs()) as run:
                run.wait_settled(3)
                _status(table, run, sizes.status_calls)
                run.stop()
    table.say(HONCHO.name, "status", "none: honcho has no status command")
    table.say(HONCHO.name, "status_code", "\N{EN DASH}")
    return table


_SCALE_BODY = re.compile(rb"(?:READY s (\d+)|LINE s (\d+) ([23]))")


def _count_lines(tool: Tool, data: bytes, expected: int) -> tuple[int, int]:
    """Lost and garbled lines of the scale formation (3 per process)."""
    seen: set[tuple[bytes, bytes]] = set()
    garbled = 0
    for _, line in lines.child_lines(tool, data):
        match = _SCALE_BODY.fullmatch(line.body)
        if match is None:
            garbled += 1
            continue
        pid = match.group(1) or match.group(2)
        seen.add((pid, match.group(3) or b"1"))
    return expected - len(seen), garbled


def _wait_for_lines(run: Run, count: int) -> None:
    """Give every process's last line a chance to arrive; one that never does counts as lost."""
    last_lines = run.launched.output.matches(rb"LINE s \d+ 3")
    run.launched.pump(lambda: len(last_lines) >= count, SCALE_LINES_TIMEOUT_SECONDS)


def scale(sizes: Sizes) -> Table:
    count = sizes.scale_count
    table = Table(
        number=8,
        title=f"Scale: {count} processes",
        setup=(
            f"{count} instances of one process type (`bench/programs/chatty.sh`: three lines "
            f"carrying its pid, then `exec sleep`): procrun `-c s={count}`, honcho "
            f"`-c s={count}`, supervisord `numprocs={count}`. *start*: launch to every READY "
            "line; memory once all are up; one status call; lines lost or garbled out of "
            f"{3 * count}; *stop*: SIGTERM to the tool's exit."
        ),
        columns=[
            Column("start", "start (ms)", 0),
            *_memory_columns(),
            Column("status", "status (ms)", 0),
            Column("lost", "lines lost", 0),
            Column("garbled", "lines garbled", 0),
            Column("stop", "stop (ms)", 0),
        ],
    )
    programs = [Program("s", sh("chatty.sh", "s"), count=count)]
    for _ in range(sizes.reps):
        for tool in _tools():
            with launch(tool, programs) as run:
                arrivals = run.wait_ready(count).values()
                table.add(tool.name, "start", 1000 * (max(arrivals) - run.launched.started_at))
                _wait_for_lines(run, count)
                _add_memory(table, tool.name, run.usage())
                if run.setup.status_argv is not None:
                    seconds, _ = run.status()
                    table.add(tool.name, "status", 1000 * seconds)
                else:
                    table.say(tool.name, "status", "none")
                sent = run.launched.signal(signal.SIGTERM)
                run.stop()
                exited = run.launched.exited_at
                assert exited is not None
                table.add(tool.name, "stop", 1000 * (exited - sent))
                lost, garbled = _count_lines(tool, run.launched.output.data(), 3 * count)
                table.add(tool.name, "lost", lost)
                table.add(tool.name, "garbled", garbled)
    ours, theirs = table.median(PROCRUN.name, "status"), table.median(SUPERVISORD.name, "status")
    if ours is not None and theirs is not None and ours > 2 * theirs:
        table.notes.append(
            "procrun's status time grows with the number of processes: for each one, "
            "procrun/procinfo.py (`TreeSampler.sample`) asks psutil for its descendants, which "
            "reads every /proc/<pid>/stat on the machine, on the event loop."
        )
    return table

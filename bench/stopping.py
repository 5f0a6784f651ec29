"""Scenarios 2-4: stopping and restarting, timed from outside with pidfds and line arrivals.

2. Shutdown latency: 3 children that die at once on SIGTERM. SIGTERM goes to the supervisor;
   pidfds on the children and on the supervisor give the moment each ended.
3. Grace precision: one child that ignores SIGTERM, grace 2 s: SIGTERM to supervisor exit, and
   whether the child's pid still runs afterwards.
4. Restart latency: a child that prints a line and crashes; ms from its CRASH line to the next
   START line (both as read from the supervisor's stdout), and how many restarts in 10 s.
"""

from __future__ import annotations

import signal
import time

from bench.runs import Sizes, launch
from bench.table import Column, Table
from bench.tools import (
    HONCHO,
    HONCHO_KILL_WAIT_SECONDS,
    PEERS,
    PROCRUN,
    SUPERVISORD,
    TINI,
    Program,
    Tool,
    sh,
)

CHILDREN = ("c1", "c2", "c3")
SUPERVISORD_TICK = (
    "supervisord handles a signal, and reaps a child that exited, only when its poll() "
    "returns: on output, or at its once-a-second timeout (its signal handler only records the "
    "signal, and Python retries an interrupted poll: PEP 475)"
)


def _margin(tool: Tool) -> float:
    """How long past its own deadline a supervisor may take to exit before it counts as hung:
    supervisord may take up to a second to notice the SIGTERM and another to send the SIGKILL."""
    return 3.0 if tool is SUPERVISORD else 1.0


def _ready_programs() -> list[Program]:
    return [Program(c, sh("ready.sh", c)) for c in CHILDREN]


def shutdown_latency(sizes: Sizes) -> Table:
    table = Table(
        number=2,
        title="Shutdown latency",
        setup=(
            "3 children (`bench/programs/ready.sh`: print READY, then `exec sleep`) that die at "
            "once on SIGTERM. Once all three are READY, SIGTERM goes to the supervisor. "
            "*children gone*: SIGTERM to the last child's exit; *supervisor exit*: SIGTERM to "
            "the supervisor's exit; *after children*: the difference, the supervisor's own "
            "latency (each from a pidfd)."
        ),
        columns=[
            Column("children", "children gone (ms)"),
            Column("total", "supervisor exit (ms)"),
            Column("after", "after children (ms)"),
        ],
    )
    tools = [*PEERS, *([TINI] if TINI.available() else [])]
    for _ in range(sizes.reps):
        for tool in tools:
            with launch(tool, _ready_programs()) as run:
                ready = run.wait_ready(3)
                sent, last_child, exited = run.timed_stop([int(pid) for pid in ready])
                table.add(tool.name, "children", 1000 * (last_child - sent))
                table.add(tool.name, "total", 1000 * (exited - sent))
                table.add(tool.name, "after", 1000 * (exited - last_child))
    table.notes.append(f"{SUPERVISORD_TICK}: its children get their SIGTERM 0-1 s late.")
    if TINI.available():
        table.notes.append(
            "tini runs `sh -c 'a & b & c & wait'` with `-g`: SIGTERM reaches the shell and the "
            "three children together, and tini exits when the shell does."
        )
    return table


def grace_precision(sizes: Sizes) -> Table:
    grace = sizes.grace_seconds
    table = Table(
        number=3,
        title="Grace precision",
        setup=(
            f"One child (`bench/programs/stubborn.sh`) that ignores SIGTERM; grace {grace:g} s "
            f'(procrun `grace = "{grace:g}s"`, supervisord `stopwaitsecs={round(grace)}` with '
            "`killasgroup`). SIGTERM to the supervisor, then seconds to its exit, the error "
            "against the configured grace, and whether the child's pid is gone afterwards."
        ),
        columns=[
            Column("seconds", "SIGTERM to exit (s)", 3),
            Column("error", "error vs grace (ms)"),
            Column("dead", "child dead afterwards (%)", 0),
        ],
    )
    for _ in range(sizes.reps):
        for tool in PEERS:
            programs = [Program("stubborn", sh("stubborn.sh", "stubborn"), grace_seconds=grace)]
            expected = HONCHO_KILL_WAIT_SECONDS if tool is HONCHO else grace
            with launch(tool, programs) as run:
                (pid,) = (int(p) for p in run.wait_ready(1))
                run.launched.watch_exit(pid)
                sent = run.launched.signal(signal.SIGTERM)
                limit = expected + _margin(tool)
                if run.launched.stop(limit):
                    exited = run.launched.exited_at
                    assert exited is not None
                    table.add(tool.name, "seconds", exited - sent)
                    table.add(tool.name, "error", 1000 * (exited - sent - expected))
                else:
                    table.say(tool.name, "seconds", f"never (still up after {limit:g} s)")
                    table.say(tool.name, "error", "\N{EN DASH}")
                table.add(tool.name, "dead", 100.0 if run.launched.has_exited(pid) else 0.0)
    table.notes.append(
        f"honcho has no grace setting: it sends SIGKILL {HONCHO_KILL_WAIT_SECONDS:g} s after "
        "SIGTERM (KILL_WAIT in honcho/manager.py), so its error is measured against that; but "
        "its kill timer only starts once some process has stopped, so a lone child that "
        "ignores SIGTERM keeps honcho (and the child) up until the benchmark kills both."
    )
    table.notes.append(
        f"{SUPERVISORD_TICK}: the grace starts up to a second late, and the SIGKILL waits for "
        "a tick too."
    )
    table.notes.append("tini has no grace period: it waits for its child for ever.")
    return table


def _restarts(tool: Tool, program: Program, window: float, table: Table, row: str) -> None:
    with launch(tool, [program]) as run:
        out = run.launched.output
        starts = out.matches(rb"START \S+ (\d+)")
        crashes = out.matches(rb"CRASH \S+ (\d+)")
        gave_up = out.matches(rb"gave up: |process\.gave_up")  # supervisord FATAL, procrun's
        run.wait_for("the first START line", lambda: len(starts) >= 1)
        first = starts.found[0][0]
        run.launched.pump(
            lambda: not run.launched.running or len(gave_up) > 0,
            window - (time.monotonic() - first),
        )
        in_window = [arrived for arrived, _ in starts.found if arrived - first <= window]
        table.add(row, "restarts", len(in_window) - 1)
        if len(starts) >= 2 and len(crashes) >= 1:
            table.add(row, "first", 1000 * (starts.found[1][0] - crashes.found[0][0]))
        else:
            table.say(row, "first", "none (exits)" if not run.launched.running else "none")
        if len(starts) >= 3 and len(crashes) >= 2:
            table.add(row, "second", 1000 * (starts.found[2][0] - crashes.found[1][0]))
        else:
            table.say(row, "second", "none")
        if run.launched.running:
            run.stop()


def restart_latency(sizes: Sizes) -> Table:
    window = sizes.restart_window_seconds
    table = Table(
        number=4,
        title="Restart latency",
        setup=(
            "One child (`bench/programs/crash.sh`) that prints `START`, then `CRASH`, and exits "
            "with status 1. *first restart*: ms from its first CRASH line to the next START line "
            "(both as read from the supervisor's stdout); *second*: the same for the next crash; "
            f"*restarts*: START lines in the {window:g} s after the first, the backoff's shape. "
            "Each tool with its default restart policy: procrun's as its README states it "
            "(no restart settings); supervisord `autorestart=true` with the default "
            "`startsecs=1` and `startretries=3` (an exit within 1 s is a failed start: back off "
            "1, 2, 3 s, then FATAL)."
        ),
        columns=[
            Column("first", "first restart (ms)"),
            Column("second", "second restart (ms)"),
            Column("restarts", f"restarts in {window:g} s", 0),
        ],
    )
    crash = Program("crash", sh("crash.sh", "crash"))
    no_backoff = Program("crash", sh("crash.sh", "crash"), backoff_seconds=0.0)
    for _ in range(sizes.reps):
        for tool in PEERS:
            _restarts(tool, crash, window, table, tool.name)
        _restarts(PROCRUN, no_backoff, window, table, 'procrun, backoff = "0ms"')
    table.notes.append(
        "honcho never restarts: when one process exits it stops all the others and exits."
    )
    table.notes.append(
        f"{SUPERVISORD_TICK}. When it reaps the crashed child a tick late, it counts it as "
        "having stayed up for `startsecs` (RUNNING), resets the backoff and never reaches "
        "FATAL: hence its varying count."
    )
    table.notes.append(
        'procrun with `backoff = "0ms"` shows its own cost of a restart, without the policy\'s '
        "delay (it gives up after `max_restarts` = 10 failures, then exits)."
    )
    return table

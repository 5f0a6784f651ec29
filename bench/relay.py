"""Scenario 1, the log relay: 3 children write numbered 60-byte lines as fast as they can.

The children prepare their lines, print READY and wait for SIGUSR1, which the benchmark sends to
all three at once (so the tools' different ways of starting them do not count). Throughput is
counted lines over the time from that signal to the last child's DONE line, as read by the
benchmark from the supervisor's stdout pipe; the ceiling is the same
children writing straight into one pipe. Afterwards every line is checked: the tool's prefix is
stripped (procrun `c1.1 | `, honcho `12:00:00 c1.1 | `, supervisord none) and what is left must
be exactly one child's line, from the child the prefix names. Anything else is garbled; numbered
lines never seen are lost.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from bench import lines
from bench.runs import Sizes, launch
from bench.table import Column, Table
from bench.tools import DIRECT, PEERS, Program, Tool, writer

CHILDREN = ("c1", "c2", "c3")
FILL = b"x" * 48  # writer.py: "c1 0000042 " + 48 x = 59 bytes + newline
LINE_BYTES = 60
RELAY_TIMEOUT_SECONDS = 300.0
EXAMPLE_BYTES = 90


@dataclass(frozen=True)
class Tally:
    distinct: int
    duplicates: int
    garbled: int
    lost: int
    example: bytes | None  # the first garbled line, as the tool wrote it


def tally(tool: Tool, data: bytes, per_child: int) -> Tally:
    seen: set[bytes] = set()
    duplicates = garbled = 0
    example = None
    children = {c.encode() for c in CHILDREN}
    for raw, line in lines.child_lines(tool, data):
        body, child = line.body, line.body[:2]
        whole = (
            len(body) == LINE_BYTES - 1
            and body[11:] == FILL
            and body[2:3] == b" "
            and body[10:11] == b" "
            and body[3:10].isdigit()
            and child in children
        )
        if whole and (line.name is None or line.name.startswith(child + b".")):
            key = body[:10]
            if key in seen:
                duplicates += 1
            seen.add(key)
        elif not (body.startswith((b"DONE ", b"READY ")) and body.split()[1] in children):
            garbled += 1
            example = example or raw
    lost = per_child * len(CHILDREN) - len(seen)
    return Tally(len(seen), duplicates, garbled, lost, example)


def _table(variant: str, sizes: Sizes) -> Table:
    how = {
        "lines": "one write(2) per line",
        "blocks": "4096-byte writes that end mid-line, as C stdio writes to a pipe",
    }[variant]
    return Table(
        number=1,
        title=f"Log relay, {variant}",
        setup=(
            f"3 children (`bench/programs/writer.py {variant}`) each write {sizes.relay_lines:,} "
            f"numbered 60-byte lines ({how}) as fast as they can; the benchmark reads the "
            "supervisor's stdout pipe and counts every line. *direct pipe*: the same children "
            "writing straight into one pipe, the machine's ceiling. The children get ready "
            "(lines built, READY printed) and start together on a SIGUSR1 from the benchmark; "
            "lines/s counts from that signal to the last child's final line. *supervisor CPU "
            "s*: all of its CPU time, start-up included; *CPU ms per MB relayed*: only what it "
            "spent from the signal to the last line, over the MB (10^6 bytes) the children "
            "wrote. Garbled: a line "
            "that is not exactly one child's line (after the tool's prefix) or names the wrong "
            "child; the direct pipe garbles block writes by nature (they end mid-line)."
        ),
        columns=[
            Column("klps", "thousand lines/s"),
            Column("ratio", "% of direct pipe", 0),
            Column("lost", "lines lost", 0),
            Column("garbled", "lines garbled", 0),
            Column("duplicated", "lines duplicated", 0),
            Column("cpu", "supervisor CPU s", 2),
            Column("cpu_mb", "CPU ms per MB relayed", 2),
        ],
    )


def _one(
    tool: Tool,
    variant: str,
    sizes: Sizes,
    table: Table,
    ceiling: float | None,
    examples: dict[str, bytes],
) -> float:
    programs = [Program(c, writer(variant, c, sizes.relay_lines), restart=False) for c in CHILDREN]
    with launch(tool, programs) as run:
        out = run.launched.output
        pids = [int(pid) for pid in run.wait_ready(len(CHILDREN))]
        out.parse_lines = False
        before = run.usage().cpu_seconds
        go = time.monotonic()
        for pid in pids:
            os.kill(pid, signal.SIGUSR1)
        run.wait_for("every child's DONE line", lambda: out.markers >= 3, RELAY_TIMEOUT_SECONDS)
        assert out.last_marker_at is not None
        elapsed = out.last_marker_at - go
        cpu = run.usage().cpu_seconds
        relayed_mb = len(CHILDREN) * sizes.relay_lines * LINE_BYTES / 1e6
        if tool is not DIRECT:
            run.stop()
        counted = tally(tool, out.data(), sizes.relay_lines)
    rate = counted.distinct / elapsed
    table.add(tool.name, "klps", rate / 1000)
    table.add(tool.name, "lost", counted.lost)
    table.add(tool.name, "garbled", counted.garbled)
    table.add(tool.name, "duplicated", counted.duplicates)
    if counted.example is not None and tool is not DIRECT and tool.name not in examples:
        examples[tool.name] = counted.example
    if tool is DIRECT:
        table.say(tool.name, "cpu", "\N{EN DASH}")
        table.say(tool.name, "cpu_mb", "\N{EN DASH}")
    else:
        table.add(tool.name, "cpu", cpu)
        table.add(tool.name, "cpu_mb", 1000 * (cpu - before) / relayed_mb)
    if ceiling:
        table.add(tool.name, "ratio", 100 * rate / ceiling)
    return rate


def log_relay(sizes: Sizes) -> list[Table]:
    tables = []
    for variant in ("lines", "blocks"):
        table = _table(variant, sizes)
        examples: dict[str, bytes] = {}
        for _ in range(sizes.reps):
            ceiling = _one(DIRECT, variant, sizes, table, None, examples)
            table.add(DIRECT.name, "ratio", 100.0)
            for tool in PEERS:
                _one(tool, variant, sizes, table, ceiling, examples)
        for name, line in examples.items():
            shown = line[:EXAMPLE_BYTES].decode(errors="replace").replace("`", "'")
            table.notes.append(f"A garbled line from {name}: `{shown}`")
        if variant == "lines":
            table.notes.append(
                "The direct pipe is not a hard ceiling for one write per line: three writers "
                "share one pipe and its reader wakes for every few lines (about 840 bytes a read "
                "in a trial), while a relay reads three pipes and writes large blocks (about "
                "19 KB a read from procrun), so a relay can be faster than the direct pipe."
            )
        table.notes.append(
            "tini does not touch its children's output (they write to the same pipe directly): "
            "its figure would be the direct pipe's."
        )
        tables.append(table)
    return tables

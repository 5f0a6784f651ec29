"""Scenario 12: fairness under load (issue 18, item 3).

50 flooders (`bench/programs/flood.py`: numbered 60-byte lines, one write each, as fast as they
can) and one quiet child (`quiet.py`: a line a second, stamped with CLOCK_MONOTONIC when it is
written). All 51 are started at once by a SIGUSR1 once they are READY; after 10 s (the smoke
run: 2) the flooders are told to stop and say how many lines each wrote. A quiet line's
delay is its arrival at the benchmark's reader (the time of the read that completed it, on the
same clock) minus its stamp; lost lines are what was written and never arrived. The direct
pipe (no supervisor: everyone writes to the benchmark's pipe) is the machine's floor, its
reader included.

While the flood runs the benchmark only looks for the quiet and FLOODED lines in what it reads
(a find over each read); the lines are checked once the run is over, so that its reader stays
fast and the figures are the tool's, not the benchmark's.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time

from bench import lines
from bench.observe import Output
from bench.runs import Run, RunFailed, Sizes, launch
from bench.table import Column, Table
from bench.tools import DIRECT, PEERS, PROGRAMS, Program, Tool

FLOODERS = 50
DRAIN_SECONDS = 30.0
MAX_REPS = 3  # each repetition floods every tool: the longest scenario
# A flood line as each tool shows it: its prefix (procrun's, honcho's with the time) if any.
_FLOOD_LINE = re.compile(rb"^(?:[^\n|]*\| )?F\d{7} \d{7} x{42}$", re.MULTILINE)
_OTHER_BODY = re.compile(rb"READY (?:flood|quiet) \d+|QUIET \d+ \d+|FLOODED \d+ \d+")
_QUIET = b"QUIET "
_FLOODED = b"FLOODED "


def _python(script: str, *args: str) -> tuple[str, ...]:
    return (sys.executable, "-I", "-S", str(PROGRAMS / script), *args)


def _programs() -> list[Program]:
    return [
        Program("flood", _python("flood.py", "flood"), count=FLOODERS),
        Program("quiet", _python("quiet.py", "quiet")),
    ]


def _tools() -> list[Tool]:
    return [DIRECT, *PEERS]


class Watch:
    """The quiet lines' delays and the flooders' counts, found in the output as it is read."""

    def __init__(self, output: Output) -> None:
        self._output = output
        self._scanned = len(output.chunks)
        self._tail = b""
        self.delays: dict[int, float] = {}  # quiet line -> seconds from its write to arrival
        self.flooded: dict[bytes, int] = {}  # flooder -> lines written

    def scan(self) -> None:
        chunks = self._output.chunks
        now = time.monotonic()
        while self._scanned < len(chunks):
            data = self._tail + chunks[self._scanned]
            self._scanned += 1
            self._tail = self._lines(data, now)

    def _lines(self, data: bytes, now: float) -> bytes:
        """Note every complete quiet or FLOODED line (noting one twice changes nothing); what
        may start one, to be read again with the next read."""
        keep = len(data) - len(_FLOODED) + 1
        for marker in (_QUIET, _FLOODED):
            start = 0
            while (found := data.find(marker, start)) != -1:
                end = data.find(b"\n", found)
                if end == -1:  # completed by the next read
                    keep = min(keep, found)
                    break
                fields = data[found + len(marker) : end].split()
                start = end
                if len(fields) < 2 or not (fields[0].isdigit() and fields[1].isdigit()):
                    continue  # garbled: counted as such at the end
                if marker == _QUIET:
                    self.delays.setdefault(int(fields[0]), now - int(fields[1]) / 1e9)
                else:
                    self.flooded[fields[0]] = int(fields[1])
        return data[max(keep, 0) :]


def _count(tool: Tool, data: bytes, watch: Watch) -> tuple[int, int, int]:
    """Flood lines relayed, quiet lines lost and lines garbled, checked over the whole output."""
    relayed = len(_FLOOD_LINE.findall(data))
    garbled = 0
    for _, line in lines.child_lines(tool, _FLOOD_LINE.sub(b"", data)):
        if _OTHER_BODY.fullmatch(line.body) is None:
            garbled += 1
    written = max(watch.delays, default=-1) + 1
    return relayed, written - len(watch.delays), garbled


def fairness(sizes: Sizes) -> Table:
    quiet_lines = max(2, round(sizes.idle_seconds / 2))
    table = Table(
        number=12,
        title="Fairness under load",
        setup=(
            f"{FLOODERS} flooders writing 60-byte lines as fast as they can (one write each) and "
            "one quiet child writing a line a second, stamped with CLOCK_MONOTONIC, for "
            f"{quiet_lines} s. *delay*: a quiet line's arrival at the reader minus its stamp; "
            "*lost*: written and never relayed; *relayed*: flood lines per second through the "
            f"tool, until the flooders' last line; a tool gets {DRAIN_SECONDS:g} s after the "
            "flood to relay its backlog. The direct pipe, with no supervisor, is the floor. "
            f"{min(sizes.reps, MAX_REPS)} repetition(s)."
        ),
        columns=[
            Column("median", "quiet delay, median (ms)"),
            Column("worst", "quiet delay, worst (ms)"),
            Column("quiet_lost", "quiet lines lost", 0),
            Column("klps", "flood relayed (k lines/s)"),
            Column("flood_lost", "flood lines lost", 0),
            Column("garbled", "lines garbled", 0),
        ],
    )
    for _ in range(min(sizes.reps, MAX_REPS)):
        for tool in _tools():
            with launch(tool, _programs()) as run:
                _measure(table, run, quiet_lines)
    return table


def _measure(table: Table, run: Run, quiet_lines: int) -> None:
    ready = run.wait_ready(FLOODERS + 1)
    quiet = run.launched.output.matches(rb"READY quiet (\d+)").distinct()
    output = run.launched.output
    output.parse_lines = False  # from here on the reader only reads (see the docstring)
    watch = Watch(output)
    began = time.monotonic()
    for pid in ready:
        os.kill(int(pid), signal.SIGUSR1)
    # The flood lasts as long as the quiet child takes to write its lines (a duration).
    run.launched.pump(lambda: _seen(watch, quiet_lines), quiet_lines - 0.5)
    for pid in ready:
        if pid not in quiet:
            os.kill(int(pid), signal.SIGUSR2)
    drained = run.launched.pump(
        lambda: _flooded(watch) and _seen(watch, quiet_lines), DRAIN_SECONDS
    )
    last_flood = time.monotonic()
    # launch()'s cleanup ends the direct pipe's shell (it waits), and a tool still behind (it
    # would print its backlog before it exits).
    if run.tool is not DIRECT and drained:
        run.stop()
    watch.scan()
    name = run.tool.name
    delays = sorted(1000 * watch.delays[n] for n in range(quiet_lines) if n in watch.delays)
    if not delays:
        raise RunFailed(f"{name}: no quiet line under the flood\n{run.diagnostics()}")
    relayed, quiet_lost, garbled = _count(run.tool, output.data(), watch)
    table.add(name, "median", delays[len(delays) // 2])
    table.add(name, "worst", delays[-1])
    table.add(name, "quiet_lost", quiet_lost)
    table.add(name, "klps", relayed / (last_flood - began) / 1000)
    table.add(name, "flood_lost", sum(watch.flooded.values()) - relayed)
    table.add(name, "garbled", garbled)
    if not drained:
        # Its lines may yet come: not lost, late; the figures above are for what came.
        note = f"{name} had not relayed its backlog {DRAIN_SECONDS:g} s after the flood ended"
        if note not in table.notes:
            table.notes.append(note)
        table.say(name, "flood_lost", "not drained")
        if len(delays) < quiet_lines:
            table.say(name, "worst", f"over {DRAIN_SECONDS:g} s")
            table.say(name, "quiet_lost", "late")


def _seen(watch: Watch, count: int) -> bool:
    watch.scan()
    return len(watch.delays) >= count


def _flooded(watch: Watch) -> bool:
    watch.scan()
    return len(watch.flooded) >= FLOODERS

"""Scenario 9: readiness. How soon procrun marks a process ready once it is, per probe kind, and
what an idle formation with probes costs.

Only procrun: honcho and supervisord have no readiness at all (supervisord's oldest open request,
Supervisor/supervisor#122); process-compose has probes but is not on these machines.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.runs import RunFailed, Sizes, launch
from bench.table import Column, Table
from bench.tools import BIN, PROGRAMS, Program, Setup, Tool

# Probe kind -> (Procfile type, program mode and flags, its probe in procrun.toml).
KINDS = {
    "tcp": ("tcp", ("tcp",), 'ready = { tcp = "127.0.0.1:$PORT" }'),
    "log": ("log", ("log",), 'ready = { log = "server is ready" }'),
    "notify": ("notify", ("notify",), "ready = { notify = true }"),
    "tcp, silent": ("quiet", ("tcp", "--silent"), 'ready = { tcp = "127.0.0.1:$PORT" }'),
}
BASE_PORT = 27000


class ProcrunWithProbes(Tool):
    name = "procrun"
    helpers = ("procrun-undertaker",)

    def __init__(self, stamps: Path, count: int) -> None:
        self._stamps = stamps
        self._count = count

    def setup(self, workdir: Path, programs: list[Program]) -> Setup:
        program = [sys.executable, "-I", "-S", str(PROGRAMS / "upready.py")]
        procfile = "".join(
            f"{kind}: {' '.join([*program, mode[0], str(self._stamps), *mode[1:]])}\n"
            for kind, mode, _ in KINDS.values()
        )
        (workdir / "Procfile").write_text(procfile)
        toml = "".join(f"[processes.{kind}]\n{probe}\n" for kind, _, probe in KINDS.values())
        (workdir / "procrun.toml").write_text(toml)
        counts = ",".join(f"{kind}={self._count}" for kind, _, _ in KINDS.values())
        argv = [str(BIN / "procrun"), "start", "-f", str(workdir / "Procfile"), "-c", counts]
        return Setup(
            argv=[*argv, "-p", str(BASE_PORT)],
            status_argv=[str(BIN / "procrun"), "status"],
            settled=rb"process\.ready .*process=(\S+)",
        )


def readiness(sizes: Sizes) -> Table:
    count = max(2, sizes.reps * 2)
    window = sizes.idle_seconds
    table = Table(
        number=9,
        title="Readiness",
        setup=(
            f"{count} instances per probe kind (`upready.py`), each ready after its own delay "
            "(1 s, once all are spawned, + 37 ms per instance number, so the moments fall all "
            "over the polled probes' 10 ms-to-1 s back-off). ms from the moment it is ready "
            "(port listening, line printed, READY=1 sent; its time.monotonic() written first) "
            "to the arrival of "
            "procrun's `process.ready` line on its stdout. tcp servers print a line once they "
            "listen, as servers do, and procrun tries its probe again on output; `tcp, silent` "
            "prints nothing, to show the back-off alone. Then the formation idles for "
            f"{window:g} s with every probe configured: procrun's wake-ups."
        ),
        columns=[
            Column("median", "median (ms)"),
            Column("worst", "worst (ms)"),
            Column("rate", "idle wake-ups/s, probes configured", 2),
        ],
    )
    stamps = Path(tempfile.mkdtemp(prefix="pbr-"))
    try:
        tool = ProcrunWithProbes(stamps, count)
        with launch(tool, []) as run:
            ready = run.launched.output.matches(rb"process\.ready .*process=(\S+)")
            total = count * len(KINDS)
            run.wait_for(f"{total} ready processes", lambda: len(ready.distinct()) >= total)
            arrivals = ready.distinct()
            for label, (kind, _, _) in KINDS.items():
                latencies = []
                for index in range(1, count + 1):
                    name = f"{kind}.{index}"
                    stamp = float((stamps / name).read_text())
                    latencies.append(1000 * (arrivals[name.encode()] - stamp))
                for value in latencies:
                    table.add(f"procrun, {label}", "median", value)
                table.add(f"procrun, {label}", "worst", max(latencies))
            before = run.usage()
            started = time.monotonic()
            run.launched.pump_for(window)  # the scenario is the duration itself
            _, switches = run.usage().minus(before)
            table.add("procrun, all probes", "rate", switches / (time.monotonic() - started))
            run.stop()
    except KeyError as error:
        raise RunFailed(f"no ready time for {error}") from None
    finally:
        for path in stamps.iterdir():
            path.unlink()
        stamps.rmdir()
    return table

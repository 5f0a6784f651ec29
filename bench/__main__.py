"""`python -m bench`: run the scenarios, print the report, write docs/benchmarks.md.

    python -m bench            full run (5 repetitions), writes docs/benchmarks.md
    python -m bench --smoke    tiny sizes, 1 repetition, every scenario end to end (< 60 s)
    python -m bench --only 2,3 some scenarios (by the issue's numbers)

Run it from the repository root inside bench/.venv (`make bench` sets that up). The exit code is
0 when every scenario ran and nothing was left running; missed targets are findings, not errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench import (
    fairness,
    footprint,
    oneoff,
    procfs,
    readiness,
    relay,
    report,
    runs,
    stopping,
    targets,
    thousand,
    watching,
)
from bench.runs import FULL, SMOKE, Sizes
from bench.table import Table
from bench.tools import TINI

REPO = Path(__file__).resolve().parent.parent

SCENARIOS: list[tuple[int, str, Callable[[Sizes], Table | list[Table]]]] = [
    (1, "relay", relay.log_relay),
    (2, "shutdown", stopping.shutdown_latency),
    (3, "grace", stopping.grace_precision),
    (4, "restart", stopping.restart_latency),
    (5, "idle", footprint.idle_cost),
    (6, "start", footprint.start_latency),
    (7, "status", footprint.status_latency),
    (8, "scale", footprint.scale),
    (9, "readiness", readiness.readiness),
    (10, "watch", watching.watch_latency),
    (11, "thousand", thousand.thousand),
    (12, "fairness", fairness.fairness),
    (13, "run", oneoff.run_overhead),
]


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, smoke 1)")
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 2,3")
    parser.add_argument("--out", type=Path, help="where to write the report")
    return parser.parse_args(argv)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every run's cleanup


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    sizes = SMOKE if args.smoke else FULL
    if args.reps:
        sizes = dataclasses.replace(sizes, reps=args.reps)
    wanted = {int(n) for n in args.only.split(",")} if args.only else None
    default_out = REPO / ("bench/.out/benchmarks-smoke.md" if args.smoke else "docs/benchmarks.md")
    out: Path = args.out or default_out
    if not TINI.available():
        print("tini is not installed: the tini columns are skipped", file=sys.stderr)

    started = datetime.datetime.now(datetime.UTC)
    began = time.monotonic()
    load_before = report.load_average()
    tables: dict[str, Table] = {}
    failures: list[str] = []
    try:
        for number, key, scenario in SCENARIOS:
            if wanted is not None and number not in wanted:
                continue
            print(f"[{time.monotonic() - began:5.0f} s] scenario {number}: {key}", file=sys.stderr)
            try:
                result = scenario(sizes)
            except runs.RunFailed as error:
                failures.append(f"scenario {number} ({key}): {error}")
                print(f"scenario {number} failed: {error}", file=sys.stderr)
                continue
            if isinstance(result, list):
                tables.update({f"{key}-{t.title.split(', ')[-1]}": t for t in result})
            else:
                tables[key] = result
    finally:
        sweep = f"{runs.MARKER_VARIABLE}={runs.SESSION}-"
        runs.LEFTOVERS.extend(procfs.kill_marked(sweep, partial=True))

    verdicts = targets.evaluate(tables, sizes.grace_seconds)
    command = {(): "make bench", ("--smoke",): "make bench-smoke"}.get(
        tuple(argv), "python -m bench " + " ".join(argv)
    )
    text = report.render(
        list(tables.values()),
        verdicts,
        sizes=sizes,
        command=command,
        started=started,
        seconds=time.monotonic() - began,
        load_before=load_before,
        failures=failures,
        smoke=args.smoke,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out}", file=sys.stderr)
    if runs.LEFTOVERS:
        print(f"processes left running after cleanup: {runs.LEFTOVERS}", file=sys.stderr)
        return 1
    print("nothing left running", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

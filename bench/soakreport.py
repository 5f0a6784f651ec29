"""The leak soak's result (bench/soak.py) and how it reads in docs/benchmarks.md: bench/report.py
shows the latest one, from bench/.out/soak.json (not committed), with its own date and commit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.table import Column, Table
from bench.targets import Verdict

RESULT = Path(__file__).resolve().parent / ".out" / "soak.json"
STATUS_EVERY_SECONDS = 0.1
MAX_RSS_GROWTH_KIB = 1024


@dataclass(frozen=True)
class Result:
    date: str
    commit: str
    load_before: str
    load_after: str
    restarts: int
    seconds: float
    status_calls: int
    status_failures: int  # exit codes other than 0 (healthy) and 3 (not all running)
    status_early: int  # calls before procrun's first answer (not listening yet)
    status_most: int  # calls running at once, at the most
    status_skipped: int  # not started, too many running
    rss_warm_kib: float
    rss_end_kib: float
    rss_max_kib: int
    fds_warm: int
    fds_end: int
    fds_min: int
    fds_max: int
    threads_max: int
    zombies_seen: int  # distinct zombie pids in any sample: exits caught before their reap
    zombies_left: int  # still a zombie at the next sample
    lost: bool  # procrun gave up or stopped relaying before the count was reached

    @property
    def rate(self) -> float:
        return self.restarts / self.seconds if self.seconds else 0.0

    @property
    def rss_growth_kib(self) -> float:
        return self.rss_end_kib - self.rss_warm_kib


def latest() -> Result | None:
    """The last soak's result, if one was run here (bench/.out is not committed)."""
    try:
        fields: dict[str, Any] = json.loads(RESULT.read_text())
        return Result(**fields)
    except (OSError, ValueError, TypeError):
        return None


def verdicts(result: Result) -> list[Verdict]:
    scenario = "Soak"
    return [
        Verdict(
            "soak-rss",
            scenario,
            f"RSS grows ≤ {MAX_RSS_GROWTH_KIB // 1024} MiB after warm-up over the restarts",
            not result.lost and result.rss_growth_kib <= MAX_RSS_GROWTH_KIB,
            f"procrun {result.rss_warm_kib / 1024:.1f} MiB after warm-up, "
            f"{result.rss_end_kib / 1024:.1f} at the end ({result.rss_growth_kib:+,.0f} KiB) "
            f"over {result.restarts:,} restarts",
        ),
        Verdict(
            "soak-fds",
            scenario,
            "fd count constant",
            not result.lost and result.fds_end <= result.fds_warm,
            f"procrun {result.fds_warm} fds at most after warm-up, {result.fds_end} at the end "
            f"(range {result.fds_min}\N{EN DASH}{result.fds_max})",
        ),
        Verdict(
            "soak-zombies",
            scenario,
            "no zombie left",
            not result.lost and result.zombies_left == 0,
            f"{result.zombies_left} left; {result.zombies_seen} exits caught before their reap",
        ),
    ]


def table(result: Result) -> Table:
    t = Table(
        number=13,
        title="Soak: 100,000 restarts" if result.restarts == 100_000 else "Soak",
        setup=(
            f"From `make bench-soak` on {result.date} ({result.commit}), not from this run; "
            f"load average {result.load_before} before, {result.load_after} after. "
            f"`bench/programs/crash.sh` (two lines, exit 1) crash-looping under procrun with "
            f'`backoff = "0ms"` (and `restart_window = "1s"`, a `max_restarts` it never '
            f"reaches) for {result.restarts:,} restarts, and `procrun status` every "
            f"{STATUS_EVERY_SECONDS * 1000:.0f} ms for the same time ({result.status_calls:,} "
            f"calls, up to {result.status_most} at once, {result.status_skipped} skipped: "
            f"{result.status_failures} failed once procrun had answered, {result.status_early} "
            "came before it listened). procrun's main process read from "
            "/proc once a second: *after warm-up* is the band of 10-20% of the restarts, *end* "
            "the last 10% (RSS: medians; fds: maxima, since a run's pipe or a status connection "
            "may be open at a sample). A zombie is left if the same pid is a zombie at two "
            "samples in a row." + (" **The crash loop stopped early.**" if result.lost else "")
        ),
        columns=[
            Column("rate", "restarts/s", 0),
            Column("minutes", "duration (min)"),
            Column("warm", "RSS after warm-up (MiB)", 2),
            Column("end", "RSS at the end (MiB)", 2),
            Column("growth", "RSS growth (KiB)", 0),
            Column("fds", "fds after warm-up / end"),
            Column("threads", "threads, most", 0),
            Column("zombies", "zombies left", 0),
        ],
    )
    row = "procrun"
    t.add(row, "rate", result.rate)
    t.add(row, "minutes", result.seconds / 60)
    t.add(row, "warm", result.rss_warm_kib / 1024)
    t.add(row, "end", result.rss_end_kib / 1024)
    t.add(row, "growth", result.rss_growth_kib)
    t.say(row, "fds", f"{result.fds_warm} / {result.fds_end}")
    t.add(row, "threads", result.threads_max)
    t.add(row, "zombies", result.zombies_left)
    return t

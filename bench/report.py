"""docs/benchmarks.md: the machine, the versions, the verdicts and one table per scenario."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

from bench import soakreport
from bench.runs import Sizes
from bench.table import Table
from bench.targets import Verdict

REPO = Path(__file__).resolve().parent.parent
DASH = "\N{EN DASH}"

# Why procrun misses a target, from profiling it (py-spy in bench/.venv, `python -X importtime`,
# strace); shown only for the targets that the run at hand missed.
_RELAY_WHY = (
    "the benchmark is CPU-bound on this machine's 2 cores, and a relay adds work there that the "
    "direct pipe does not have. Measured on a quiet machine (issue 18, CPU per MB the children "
    "wrote): through the direct pipe the 3 writers and the benchmark's reader take 1.8-2.0 ms "
    "and keep both cores busy; through procrun the writers take ~0.7 ms, the reader ~1.3 (it "
    "reads 12% more bytes, the prefixes) and procrun 0.75-1.0, about 3 ms in all: a ratio near "
    "65-70% whatever the relay does, since 90% would need procrun under ~0.2 ms/MB, less than "
    "its kernel pipe work alone (perf: half of procrun's CPU is the kernel copying each byte out "
    "of a child's pipe and into stdout's, with their pages). procrun's own part is at pure "
    "Python's floor: one copy per byte, bytes.replace putting in the prefixes (memchr and "
    "memcpy per line, a fifth of its CPU). Issue 18 removed the two other copies (a chunk goes "
    "out as read, beside the line start carried over from the read before: "
    "procrun/output/lines.py, relay.py `emit_chunk`): 0.31 -> 0.23 ms/MB of relay work "
    "in-process, 0.86 -> 0.74 ms/MB of procrun's CPU in this benchmark, the same ratio. "
    "Earlier: whole reads go out at once (`_has_over_long_line`), a 1 MiB stdout pipe and "
    "256 KiB child pipes (procrun/output/pipesize.py), glibc's heap kept through a burst "
    "(procrun/output/heap.py: 16,000 -> 1,000 page faults). With more cores procrun's work "
    "would run beside the writers' and the reader's instead of taking theirs (not measurable "
    "here); the direct pipe's own figure swings by a factor of two between repetitions, so "
    "the verdict can flip between runs."
)

WHY = {
    "watch-idle": (
        "the wake-ups are watchfiles' own: its Rust `watch()` sleeps `step` (50 ms) between "
        "looks at the notify crate's event channel, even with no timeout, so its thread wakes "
        "20 times a second however quiet the files are (measured alone: 20.2/s with "
        "`rust_timeout=0` and with the default 5 s alike). A larger step would cut them but "
        "delay every restart by as much; procrun keeps the 50 ms. Without --watch nothing of "
        "it is loaded. A fix belongs upstream (block on the channel with a timeout instead of "
        "sleeping in steps)."
    ),
    "relay-lines": _RELAY_WHY,
    "relay-blocks": _RELAY_WHY,
    "shutdown": (
        "compare the arrival of procrun's `procrun.exited` line with its exit. Up to commit "
        "45948ae the gap was the interpreter's teardown after `asyncio.run()` returned (py-spy "
        "`--native`: `gc_collect_main` and deallocations, about 25 ms); procrun now ends "
        "`start` with `os._exit()` (procrun/cli/main.py, `main`), so a miss has another cause."
    ),
    "grace": (
        "the SIGKILL at the deadline comes from procrun's stop plan (procrun/process.py, "
        "`_run_stop_plan`); whatever scenario 2 shows after the children's exit comes on top."
    ),
    "restart": (
        'compare the `backoff = "0ms"` row, procrun\'s own cost of a restart: if that row is '
        "fast, the delay is the restart policy (procrun/lifecycle.py, `backoff_delay`), not the "
        "machinery."
    ),
    "idle-rss": (
        "procrun's main process idles at about 21.6 MiB: the interpreter (~11), click, asyncio "
        "and structlog; OpenSSL (asyncio's optional TLS, hashlib), python-dotenv without a .env "
        "file, decimal and psutil are kept out (tests/test_footprint.py checks it). Its "
        "undertaker is a /bin/sh script (procrun/undertaker.py): 1.6 MiB with dash, more where "
        "/bin/sh is bash."
    ),
    "status": (
        "the round trip for 3 processes is mostly the client's start-up, not the request. A "
        "plain `procrun status` no longer imports click (procrun/cli/entry.py; 84 -> 48 ms by hand "
        "on this machine, where `python -c pass` takes 13 ms); what is left is the interpreter, "
        "the socket, json and pathlib imports, and on the supervisor's side the first request's "
        "import of psutil (about 20 ms, once; later requests take 2-3 ms: one /proc walk per "
        "tree, off the event loop, procrun/procinfo.py)."
    ),
    "thousand-start": (
        "spawning, one child at a time, and the children's own start on 2 cores. Since the "
        "spawn path has no Python preexec_fn (vfork; procrun/signals.py), 1,000 starts went "
        "from 13.7-19.8 s to 2.3-3.1 s here. py-spy over a 1,000 start now: 42% of procrun's "
        "samples in `Popen.__init__` (the vfork and the wait for each exec, ~1 ms a child), "
        "11% writing event lines to stdout and 8% writing to the undertaker's pipe (each "
        "write wakes its reader, on this VM a wake-up on the other CPU), the logging, relay "
        "and imports the rest. The floor: a shell starting the same 1,000 children with no "
        "supervisor at all reaches the last READY line in 1.1-1.2 s. Coalescing procrun's "
        "stdout writes over a pass of the loop measured slower (2.33-2.62 s against 2.11-2.28 "
        "s, side by side), and running the undertaker at nice 19 changed nothing: neither "
        "landed."
    ),
    "thousand-status": (
        "the supervisor reads /proc for every tree before it answers (procrun/procinfo.py). "
        "It now reads each member's stat and statm itself and lists children with "
        "os.listdir rather than Path.glob (psutil made five reads a member, and glob's "
        "pattern matching took a third of the time): 2-4x less, side by side. What is left "
        "at 1,000 is those 4,000 opens of /proc files, the JSON of 1,000 rows (~390 kB, "
        "about 25 ms) and the client's start-up; on a loaded machine every /proc open waits "
        "for a core."
    ),
    "start": (
        "0.6x honcho is below what an asyncio program can do here: the asyncio floor (a "
        "20-line script that imports asyncio, starts three shells and relays their lines, "
        "nothing else; bench/programs/floor.py) takes longer than the target in the same run. "
        "Where procrun's time goes, launch to the first spawn (`python -X importtime` and "
        "cProfile of `procrun start` up to its first spawn, issue 18): 93% is imports (194 of "
        "208 ms under the profiler), run_start itself 11 ms. Of ~160 ms of import time "
        "(importtime's self times, median of 5): procrun's own modules 60 ms (the project "
        "parsers 19, settings, lifecycle and events 15: 51 dataclasses are built at import, "
        "~0.7 ms each), structlog 11, click 8, asyncio 10 plus ssl, socket and logging that "
        "it pulls in. This machine keeps ~0.6 GiB of page cache, so each module is a read "
        "from disk and the count of files matters more than their size (239 modules at the "
        "first spawn). Deferring the control server until after the spawn would save its 9 "
        "modules (~6 ms of import time) and no more."
    ),
    "run": (
        "`procrun run` imports click and the project loader, the parsers and their "
        "dataclasses (~60 ms here), to give the command exactly the environment `start` "
        "gives (the real environment > procrun.toml `env` > .env, the virtualenv first on "
        "PATH) and the same one-line errors for a bad project file. The interpreter alone "
        "is ~20 ms; honcho's `run` costs about as much as procrun's in the same run."
    ),
    "fairness": (
        "the median is under the target; the worst case is not procrun's queue. Since the "
        "pipes still read in the pass that fills stdout take 4 KiB each (procrun/output/"
        "relay.py, `PAUSING_READ_BYTES`; before, up to 256 KiB each, ~9 MB queued a pass), at "
        "most ~0.5 MiB waits in procrun and up to 1 MiB in stdout's pipe ahead of a quiet line, "
        "~20 ms at the reader's pace here: measured on one run, median 274.6 -> 32.2 ms, worst "
        "356.6 -> 111.3 ms, flood throughput unchanged (1,028k -> 1,104k lines/s). What is "
        "left is the 2 cores shared by 50 flooders, procrun and the reader: the direct pipe, "
        "with no supervisor at all, has the worse worst case in the same run (the table above)."
    ),
}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _memory() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _os() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return platform.system()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def procrun_version() -> str:
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = " with uncommitted changes" if _git("status", "--porcelain", "procrun") else ""
    return f"{_version('procrun')} (commit {commit}{dirty})" if commit else _version("procrun")


def tini_version() -> str:
    tini = shutil.which("tini")
    if tini is None:
        return "not installed: the tini columns are skipped"
    done = subprocess.run([tini, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().removeprefix("tini version ") or "unknown"


def load_average() -> str:
    return " ".join(_read("/proc/loadavg").split()[:3])


def render(
    tables: list[Table],
    verdicts: list[Verdict],
    *,
    sizes: Sizes,
    command: str,
    started: datetime.datetime,
    seconds: float,
    load_before: str,
    failures: list[str],
    smoke: bool = False,
) -> str:
    # The leak soak is a run of its own (`make bench-soak`): its latest result, if any, as it was.
    if not smoke and (soak := soakreport.latest()) is not None:
        verdicts = [*verdicts, *soakreport.verdicts(soak)]
        tables = [*tables, soakreport.table(soak)]
    lines = [
        "# Benchmarks: procrun against honcho, supervisord and tini",
        "",
        *(
            [
                "**Smoke run: sizes too small for the figures to mean anything (a relay of a "
                "few milliseconds, one repetition); it only shows that every scenario works.**",
                "",
            ]
            if smoke
            else []
        ),
        f"Generated by `{command}` on {started:%Y-%m-%d %H:%M} UTC; do not edit by hand, re-run "
        "it (`make bench` rewrites this file; `make bench-smoke`, a quick check at tiny sizes, "
        "writes `bench/.out/` instead). The code is in `bench/`. Every scenario runs every tool "
        f"in the same run, interleaved, {_plural(sizes.reps, 'repetition')}; figures are the "
        f"median and, in brackets, the range (min{DASH}max).",
        "",
        "| | |",
        "|---|---|",
        f"| machine | {_cpu_model()}, {os.cpu_count()} CPUs, {_memory()} |",
        f"| OS | {_os()}, Linux {platform.release()} |",
        f"| Python | {platform.python_version()} |",
        f"| procrun | {procrun_version()} |",
        f"| honcho | {_version('honcho')} |",
        f"| supervisor | {_version('supervisor')} |",
        f"| tini | {tini_version()} |",
        f"| run | {seconds / 60:.1f} min; load average {load_before} before, "
        f"{load_average()} after |",
        "",
        "Runs on a shared machine are noisy: other work on the same cores (test suites, builds) "
        "moves the throughput and latency figures from run to run, and the ranges show by how "
        "much. Compare tools within one run, not across runs.",
        "",
        "## Targets",
        "",
        "| scenario | target | verdict | figures |",
        "|---|---|---|---|",
    ]
    for v in verdicts:
        lines.append(f"| {v.scenario} | {v.target} | **{v.word}** | {v.figures} |")
    missed = [v for v in verdicts if v.passed is False]
    if missed:
        lines += ["", "Where procrun misses, and why:", ""]
        lines += [f"- **{v.scenario}**: {WHY.get(v.key, 'not analysed yet.')}" for v in missed]
    if failures:
        lines += ["", "## Scenarios that failed", ""]
        lines += [f"- {failure}" for failure in failures]
    lines.append("")
    return "\n".join(lines) + "\n" + "\n".join(table.markdown() for table in tables)

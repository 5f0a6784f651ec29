"""The leak soak (issue 18): procrun through a crash loop of RESTARTS restarts (100,000 unless told)
with backoff 0, under a `procrun status` every 100 ms for the whole time (a new one on time even
while the last is still running: a status costs an interpreter start, over 100 ms on a busy
machine).

    python -m bench.soak [RESTARTS]      (`make bench-soak RESTARTS=...`)

The child is `bench/programs/crash.sh`: two lines, exit 1, so every run spawns, relays, holds and
reaps. Once a second the soak reads procrun's main process from /proc: VmRSS, the entries of
/proc/PID/fd, and its children in state Z. A zombie is "left" when the same pid is still a zombie
at the next sample (an exit procrun has not reaped within a second); one seen once is an exit
caught before its reap. RSS and fds are compared between the band just after warm-up (10-20% of
the restarts) and the last 10%: medians for RSS, maxima for fds (a crashed run's pipe or a status
connection may be open at any sample).

`restart_window = "1s"` and a `max_restarts` above what a second can hold keep procrun from giving
up; with the default 300 s window, each exit would filter a tuple of up to 300 s of failures.

Writes bench/.out/soak.json (bench/soakreport.py); `make bench` puts the latest one into
docs/benchmarks.md, with its own date and commit. Not in CI, nor in `make bench`'s run.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import report, runs, soakreport
from bench.runs import launch
from bench.soakreport import RESULT, STATUS_EVERY_SECONDS, Result
from bench.tools import BIN, Procrun, Program, Setup, sh

DEFAULT_RESTARTS = 100_000
SAMPLE_EVERY_SECONDS = 1.0
WARM_BAND = (0.10, 0.20)  # of the restarts: RSS and fds just after warm-up
END_BAND = 0.90  # the last 10%
MAX_STATUS_AT_ONCE = 8
STALL_SECONDS = 60.0  # no restart for this long: procrun gave up or hangs
READ_BYTES = 1 << 20
START_MARK = b"| START crash "


class SoakProcrun(Procrun):
    """procrun with the crash loop's settings: no backoff, never giving up."""

    def setup(self, workdir: Path, programs: list[Program]) -> Setup:
        made = super().setup(workdir, programs)
        (workdir / "procrun.toml").write_text(
            '[processes.crash]\nbackoff = "0ms"\nrestart_window = "1s"\nmax_restarts = 1000000\n'
        )
        return made


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the soak began
    restarts: int
    rss_kib: int
    fds: int
    threads: int
    zombies: tuple[int, ...]


def _sample(pid: int, began: float, restarts: int) -> Sample | None:
    """procrun's main process now; None if it has gone."""
    status = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            status[key] = value.split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    zombies = tuple(int(c) for c in children if _state(int(c)) == "Z")
    return Sample(
        at=time.monotonic() - began,
        restarts=restarts,
        rss_kib=int(status["VmRSS"][0]),
        fds=fds,
        threads=int(status["Threads"][0]),
        zombies=zombies,
    )


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return stat[stat.rindex(")") + 2 :].split()[0]


class _StatusCalls:
    """`procrun status` every STATUS_EVERY_SECONDS, on time even while earlier calls still run
    (up to MAX_STATUS_AT_ONCE); each exit seen on a pidfd."""

    def __init__(self, selector: selectors.BaseSelector, run: runs.Run) -> None:
        self._selector = selector
        self._run = run
        self._clients: dict[int, subprocess.Popen[bytes]] = {}  # by pidfd
        self.due = time.monotonic()
        self.calls = 0
        self.most = 0  # calls running at once, at the most
        self.skipped = 0  # not started: MAX_STATUS_AT_ONCE were running
        self.failures = 0
        self.early = 0  # failed before the first answer: procrun not listening yet
        self.answered = False
        self.failed: collections.Counter[str] = collections.Counter()  # by what it said

    def start(self) -> None:
        # On schedule, but with no burst to catch up after a stall of the soak itself.
        self.due = max(self.due, time.monotonic() - 1.0) + STATUS_EVERY_SECONDS
        if len(self._clients) >= MAX_STATUS_AT_ONCE:
            self.skipped += 1
            return
        assert self._run.setup.status_argv is not None
        self.calls += 1
        try:
            client = subprocess.Popen(
                self._run.setup.status_argv,
                cwd=self._run.workdir,
                env=self._run.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,  # a line or two at most, read once it has exited
            )
        except OSError as error:  # bench/.venv being reinstalled under the soak, say
            self.failures += 1
            self.failed[f"could not start: {error}"] += 1
            return
        fd = os.pidfd_open(client.pid)
        self._clients[fd] = client
        self._selector.register(fd, selectors.EVENT_READ, self)
        self.most = max(self.most, len(self._clients))

    def exited(self, fd: int) -> None:
        self._selector.unregister(fd)
        os.close(fd)
        client = self._clients.pop(fd)
        code = client.wait()
        assert client.stderr is not None
        said = client.stderr.read().decode(errors="replace").strip()
        client.stderr.close()
        if code in (0, 3):
            self.answered = True
        elif not self.answered:
            self.early += 1
        else:
            self.failures += 1
            self.failed[f"exit {code}: {said[-300:]}"] += 1

    def close(self) -> None:
        for fd, client in self._clients.items():
            client.kill()
            client.communicate()
            os.close(fd)
        self._clients.clear()


def soak(restarts: int) -> tuple[Result, list[Sample]]:
    load_before = report.load_average()
    programs = [Program("crash", sh("crash.sh", "crash"))]
    samples: list[Sample] = []
    with launch(SoakProcrun(), programs) as run:
        pid = run.launched.pid
        out_fd = run.launched.output.fd
        selector = selectors.DefaultSelector()
        selector.register(out_fd, selectors.EVENT_READ, None)
        status = _StatusCalls(selector, run)
        began = last_start = time.monotonic()
        next_sample = began
        starts, carry, lost = 0, b"", False
        try:
            while starts <= restarts:  # the first start is no restart
                now = time.monotonic()
                if now >= status.due:
                    status.start()
                if now >= next_sample:
                    sample = _sample(pid, began, max(0, starts - 1))
                    samples.extend([sample] if sample else [])
                    next_sample += SAMPLE_EVERY_SECONDS
                if now - last_start > STALL_SECONDS or run.launched.popen.poll() is not None:
                    lost = True
                    break
                timeout = max(0.0, min(status.due, next_sample) - time.monotonic())
                for key, _ in selector.select(timeout):
                    if key.data is status:
                        status.exited(key.fd)
                        continue
                    data = os.read(out_fd, READ_BYTES)
                    if not data:
                        lost = True
                        break
                    # A mark cut between two reads is found through the last read's end.
                    found = (carry + data).count(START_MARK)
                    if found:
                        starts += found
                        last_start = time.monotonic()
                    carry = data[-(len(START_MARK) - 1) :]
                if lost:
                    break
            seconds = time.monotonic() - began
            for failure, times in status.failed.items():
                print(f"soak: {times} status call(s) failed: {failure}", file=sys.stderr)
            if lost:
                code = run.launched.popen.poll()
                how = "still running" if code is None else f"exit status {code}"
                print(f"soak: the crash loop stopped (procrun: {how})", file=sys.stderr)
                print(run.diagnostics(), file=sys.stderr)
            elif sample := _sample(pid, began, max(0, starts - 1)):
                samples.append(sample)
        finally:
            status.close()
            selector.close()
        if not samples:
            raise runs.RunFailed(f"procrun was gone before the first sample\n{run.diagnostics()}")
        if not lost:
            run.stop()
    return _result(samples, max(0, starts - 1), seconds, status, load_before, lost), samples


def _result(
    samples: list[Sample],
    restarts: int,
    seconds: float,
    status: _StatusCalls,
    load_before: str,
    lost: bool,
) -> Result:
    total = samples[-1].restarts or 1
    warm = [s for s in samples if WARM_BAND[0] <= s.restarts / total <= WARM_BAND[1]]
    end = [s for s in samples if s.restarts / total >= END_BAND]
    after = [s for s in samples if s.restarts / total >= WARM_BAND[0]]
    warm, end, after = warm or samples, end or samples, after or samples
    left = {
        pid
        for earlier, later in itertools.pairwise(samples)
        for pid in set(earlier.zombies) & set(later.zombies)
    }
    return Result(
        date=f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        commit=report.procrun_version(),
        load_before=load_before,
        load_after=report.load_average(),
        restarts=restarts,
        seconds=seconds,
        status_calls=status.calls,
        status_failures=status.failures,
        status_early=status.early,
        status_most=status.most,
        status_skipped=status.skipped,
        rss_warm_kib=statistics.median(s.rss_kib for s in warm),
        rss_end_kib=statistics.median(s.rss_kib for s in end),
        rss_max_kib=max(s.rss_kib for s in after),
        fds_warm=max(s.fds for s in warm),
        fds_end=max(s.fds for s in end),
        fds_min=min(s.fds for s in after),
        fds_max=max(s.fds for s in after),
        threads_max=max(s.threads for s in samples),
        zombies_seen=len({pid for s in samples for pid in s.zombies}),
        zombies_left=len(left),
        lost=lost,
    )


def main(argv: list[str]) -> int:
    given = argv[0] if argv else str(DEFAULT_RESTARTS)
    if not given.isdigit() or int(given) < 1 or len(argv) > 1:
        print(
            f"bench.soak: expected one RESTARTS count (a whole number above 0), got "
            f"{' '.join(argv)!r}; e.g. make bench-soak RESTARTS=100000",
            file=sys.stderr,
        )
        return 2
    restarts = int(given)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(f"soak: {restarts:,} restarts of crash.sh under {BIN / 'procrun'}", file=sys.stderr)
    try:
        result, samples = soak(restarts)
    except runs.RunFailed as error:
        print(f"soak failed: {error}", file=sys.stderr)
        return 1
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(asdict(result), indent=2) + "\n")
    (RESULT.parent / "soak-samples.json").write_text(json.dumps([asdict(s) for s in samples]))
    print(soakreport.table(result).markdown())
    for v in soakreport.verdicts(result):
        print(f"{v.word}: {v.target}: {v.figures}")
    print(f"written to {RESULT}", file=sys.stderr)
    if runs.LEFTOVERS:  # launch() cleans up its own run only: other benchmarks may be running
        print(f"processes left running after cleanup: {runs.LEFTOVERS}", file=sys.stderr)
        return 1
    return 0 if all(v.passed for v in soakreport.verdicts(result)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

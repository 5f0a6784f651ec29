"""The seeded fault soak (issue 19): the reference app (real gunicorn, Celery worker and Beat on a
real redis-server) plus misbehaving children, through cycles of random faults, each cycle ended
by a SIGTERM at a random moment and followed by a fresh `procrun start`.

A cycle: start, wait for the web server and the worker, submit a few acks_late jobs, then a
seeded random schedule of faults (SIGKILL of a leader or of a Celery pool child, SIGSTOP/SIGCONT,
`procrun restart`, `stop` then `start`, a Redis restart, a reader that stops reading procrun's
stdout while a child floods it), then SIGTERM, sometimes with a `procrun restart` in flight.

After every stop: procrun exited within the shutdown deadline plus 100 ms, with the exit code the
README's table gives; nothing it started is left, alive or zombie; no traceback and no pid=None
in procrun's own lines. After the last cycle, every job submitted has its effect recorded (once:
the app records it with SET NX).

tests/reliability/test_soak.py runs it in CI with a fixed seed; `make soak CYCLES=200 SEED=...`
runs a longer one. A failure names the seed and the cycle, so it can be replayed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.app.formation import REPO, STARTUP_DEADLINE_SECONDS, app_environment, post_json
from tests.app.redisserver import RedisServer, free_port
from tests.harness import (
    DEADLINE_SECONDS,
    Procrun,
    blocked_in_write,
    children_of,
    client_command,
    wait_for_state,
)

CHILDREN = REPO / "tests" / "children"
SHUTDOWN_TIMEOUT_SECONDS = 4.0
STOP_MARGIN_SECONDS = 0.1
JOB_DEADLINE_SECONDS = 120.0
BURST_LINES = 20_000  # about 2.4 MB: more than procrun's 1 MiB stdout pipe holds

PROCFILE = f"""\
web: gunicorn -c app/gunicorn.conf.py 'app.web:create_application()'
worker: celery -A app.tasks worker --loglevel INFO --without-gossip --without-mingle
beat: celery -A app.tasks beat --loglevel INFO
crasher: {sys.executable} -u {CHILDREN / "crasher.py"} 3
stubborn: {sys.executable} -u {CHILDREN / "recorder.py"} --ignore --pool 2
escaper: {sys.executable} -u {CHILDREN / "escaper.py"} --setsid
burster: {sys.executable} -u {CHILDREN / "burster.py"} {BURST_LINES}
"""
SETTINGS = f"""\
shutdown_timeout = "{SHUTDOWN_TIMEOUT_SECONDS:g}s"
force_kill_after = "1s"

[defaults]
grace = "3s"
max_restarts = 100000
restart_window = "10s"
backoff_max = "500ms"

[processes.worker]
grace = "3s"
second_signal = "QUIT"
second_signal_margin = "1s"

[processes.beat]
grace = "2s"

[processes.stubborn]
grace = "1s"
"""
RESTARTABLE = ("web", "worker", "beat", "stubborn", "escaper", "burster")


class SoakFailure(AssertionError):
    pass


@dataclass
class Soak:
    seed: int
    cycles: int
    directory: Path
    redis: RedisServer
    rng: random.Random = field(init=False)
    token: str = field(init=False)
    jobs: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    stop_seconds: list[float] = field(default_factory=list)
    waited_for_visibility: int = 0
    vanished: list[str] = field(default_factory=list)
    """Jobs Redis handed to no worker's unacked set: popped by a BRPOP whose reply a stopping
    worker never read (celery#4354, kombu#1733 reverted by kombu#2154). Upstream's loss, counted
    and reported; any other missing job fails the soak."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.token = f"soak-{self.seed}-{os.getpid()}"
        (self.directory / "Procfile").write_text(PROCFILE)
        (self.directory / "soak.toml").write_text(SETTINGS)

    def say(self, text: str) -> None:
        self.log.append(text)

    def fail(self, cycle: int, text: str) -> SoakFailure:
        steps = "\n".join(f"  {line}" for line in self.log[-30:])
        return SoakFailure(
            f"soak seed {self.seed}, cycle {cycle}: {text}\n"
            f"replay: make soak SEED={self.seed} CYCLES={self.cycles}\nlast steps:\n{steps}"
        )


class Formation(Procrun):
    """`procrun start` of the soak's Procfile, in the repository (the app's working directory)."""

    def __init__(self, soak: Soak, cycle: int) -> None:
        self.port = free_port()
        self.socket = Path(tempfile.mkdtemp(prefix="prk-")) / "procrun.sock"
        env = {
            **app_environment(soak.redis.url),
            "PORT": str(self.port),
            "PROCRUN_SOCKET": str(self.socket),
            "SOAK_TOKEN": soak.token,
        }
        directory = soak.directory / f"cycle-{cycle}"
        directory.mkdir()
        procfile = (soak.directory / "Procfile").read_text()
        super().__init__(
            directory,
            procfile,
            "-f",
            str(soak.directory / "Procfile"),
            "-d",
            str(REPO),
            "--config",
            str(soak.directory / "soak.toml"),
            env=env,
        )
        self.base_url = f"http://127.0.0.1:{self.port}"

    def client(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = self.background(*args)
        out, err = command.communicate(timeout=DEADLINE_SECONDS)
        return subprocess.CompletedProcess(command.args, command.returncode, out, err)

    def background(self, *args: str) -> subprocess.Popen[str]:
        return client_command(self.socket, *args)

    def status(self) -> dict[str, dict[str, object]]:
        result = self.client("status", "--json")
        if result.returncode not in (0, 3):
            raise AssertionError(f"status failed: {result.stderr}")
        return {row["name"]: row for row in json.loads(result.stdout)["processes"]}

    def pid_of(self, name: str) -> int | None:
        pid = self.status()[name]["pid"]
        return pid if isinstance(pid, int) else None


# --- the faults ---------------------------------------------------------------------------------


def kill_a_leader(soak: Soak, formation: Formation) -> None:
    name = soak.rng.choice([f"{kind}.1" for kind in RESTARTABLE])
    pid = formation.pid_of(name)
    soak.say(f"SIGKILL {name} (pid {pid})")
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_a_pool_child(soak: Soak, formation: Formation) -> None:
    pid = formation.pid_of("worker.1")
    pool = children_of(pid) if pid is not None else []
    soak.say(f"SIGKILL a pool child of worker.1 among {pool}")
    if pool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(soak.rng.choice(pool), signal.SIGKILL)


def stop_and_continue(soak: Soak, formation: Formation) -> None:
    name = soak.rng.choice([f"{kind}.1" for kind in RESTARTABLE])
    pid = formation.pid_of(name)
    pause = round(soak.rng.uniform(0.1, 0.8), 2)
    soak.say(f"SIGSTOP {name} (pid {pid}) for {pause} s, then SIGCONT")
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGSTOP)
        time.sleep(pause)  # how long the fault lasts, not a wait for anything
        os.kill(pid, signal.SIGCONT)


def restart_one(soak: Soak, formation: Formation) -> None:
    kind = soak.rng.choice(RESTARTABLE)
    result = formation.client("restart", kind)
    soak.say(f"procrun restart {kind}: {result.returncode} {result.stdout.strip()}")
    if result.returncode != 0:
        raise AssertionError(f"restart {kind} failed: {result.stderr}")


def stop_then_start(soak: Soak, formation: Formation) -> None:
    kind = soak.rng.choice(RESTARTABLE)
    for verb in ("stop", "start"):
        result = formation.client(verb, kind)
        soak.say(f"procrun {verb} {kind}: {result.returncode} {result.stdout.strip()}")
        if result.returncode != 0:
            raise AssertionError(f"{verb} {kind} failed: {result.stderr}")


def restart_redis(soak: Soak, formation: Formation) -> None:
    soak.say("redis-server restart (data kept)")
    with soak.redis.outage():
        pass


def stall_the_reader(soak: Soak, formation: Formation) -> None:
    """Stop reading procrun's stdout while the burster floods it, until the flood is held back
    all the way to the child's own write; then read again and count every line."""
    pid = formation.pid_of("burster.1")
    soak.say(f"stall stdout while burster.1 (pid {pid}) floods it")
    if pid is None:
        return
    formation.stall_reading()
    try:
        result = formation.client("signal", "burster", "USR1")
        if result.returncode != 0:
            raise AssertionError(f"signal burster failed: {result.stderr}")
        wait_for_state(lambda: blocked_in_write(pid), "the burster to block on its pipe")
    finally:
        formation.resume_reading()
    done = formation.wait_for_line(rf"burster\.1 +\| burst ({pid}\.\d+) done lines=(\d+)")
    burst = done.group(1)
    lines = sum(f"| burst {burst} line " in line for line in formation.transcript().splitlines())
    if lines != BURST_LINES:
        raise AssertionError(f"burst {burst}: {lines} of {BURST_LINES} lines arrived")


def submit_jobs(soak: Soak, formation: Formation) -> None:
    for _ in range(soak.rng.randint(1, 3)):
        job_id = f"soak-{soak.seed}-{len(soak.jobs):04d}"
        seconds = round(soak.rng.uniform(0.05, 1.0), 2)
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while True:  # the web server may be restarting: retry the same id, as a client would
            with contextlib.suppress(OSError, urllib.error.URLError):
                reply = post_json(
                    f"{formation.base_url}/jobs", {"seconds": seconds, "job_id": job_id}
                )
                if reply.status in (200, 202):
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} not accepted")
            time.sleep(0.1)  # a client's retry interval
        soak.jobs.append(job_id)
        soak.say(f"submitted {job_id} ({seconds} s)")


FAULTS: list[Callable[[Soak, Formation], None]] = [
    kill_a_leader,
    kill_a_pool_child,
    stop_and_continue,
    restart_one,
    stop_then_start,
    restart_redis,
    stall_the_reader,
    submit_jobs,
]


# --- the checks ---------------------------------------------------------------------------------


def processes_with_token(token: str) -> list[int]:
    """Live processes whose environment carries the soak's token: what procrun started."""
    found = []
    needle = f"SOAK_TOKEN={token}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
    return found


def zombie_children(pid: int) -> list[int]:
    zombies = []
    for child in children_of(pid):
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{child}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                zombies.append(child)
    return zombies


def expected_exit_codes(output: str) -> set[int]:
    """The README's table: 137 when the shutdown had to SIGKILL a process at its deadline; 0
    when nothing was ever SIGKILLed; either when a kill came before the shutdown only."""
    shutdown = output.rfind("shutdown.started")
    killed_in_shutdown = re.search(r"signal\.sent .*signal=SIGKILL", output[shutdown:])
    if killed_in_shutdown:
        return {128 + signal.SIGKILL}
    if re.search(r"signal\.sent .*signal=SIGKILL", output):
        return {0, 128 + signal.SIGKILL}
    return {0}


def own_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("procrun ")]


def check_stop(soak: Soak, cycle: int, formation: Formation, code: int, took: float) -> None:
    output = formation.transcript()
    if took > SHUTDOWN_TIMEOUT_SECONDS + STOP_MARGIN_SECONDS:
        raise soak.fail(
            cycle, f"the stop took {took:.3f} s (deadline {SHUTDOWN_TIMEOUT_SECONDS} s)"
        )
    if code not in expected_exit_codes(output):
        raise soak.fail(cycle, f"exit code {code}, expected {expected_exit_codes(output)}")
    for line in own_lines(output):
        if "pid=None" in line or "Traceback" in line or "procrun.error" in line:
            raise soak.fail(cycle, f"procrun logged: {line}")
    if "Traceback" in formation.stderr or "Exception in callback" in output + formation.stderr:
        raise soak.fail(cycle, f"a traceback:\n{formation.stderr[-2000:]}")
    try:
        wait_for_state(lambda: not processes_with_token(soak.token), "nothing left running", 5.0)
    except AssertionError:
        raise soak.fail(cycle, f"left running: {processes_with_token(soak.token)}") from None


@contextlib.contextmanager
def formation_of(soak: Soak, cycle: int) -> Iterator[Formation]:
    formation = Formation(soak, cycle)
    with formation:
        try:
            formation.wait_for_line(r"web\.1 .*Listening at", STARTUP_DEADLINE_SECONDS)
            formation.wait_for_line(r"worker\.1 .*celery@\S+ ready", STARTUP_DEADLINE_SECONDS)
            formation.wait_for_line(r"burster\.1 +\| burster \d+ ready", STARTUP_DEADLINE_SECONDS)
            yield formation
        finally:
            formation.resume_reading()


def run_cycle(soak: Soak, cycle: int) -> None:
    soak.say(f"cycle {cycle}: start")
    with formation_of(soak, cycle) as formation:
        try:
            submit_jobs(soak, formation)
            for _ in range(soak.rng.randint(2, 5)):
                soak.rng.choice(FAULTS)(soak, formation)
            if zombie_children(formation.proc.pid):
                wait_for_state(
                    lambda: not zombie_children(formation.proc.pid), "no zombie children", 5.0
                )
            in_flight = (
                formation.background("restart", "worker") if soak.rng.random() < 0.3 else None
            )
            soak.say(f"SIGTERM{' with a restart in flight' if in_flight else ''}")
            begun = time.monotonic()
            formation.signal(signal.SIGTERM)
            code = formation.wait(SHUTDOWN_TIMEOUT_SECONDS + DEADLINE_SECONDS)
            took = time.monotonic() - begun
            formation.rest()
            if in_flight is not None:
                _, error = in_flight.communicate(timeout=DEADLINE_SECONDS)
                if "without a reply" in error or "Traceback" in error:
                    raise soak.fail(cycle, f"the restart in flight got: {error}")
        except SoakFailure:
            raise
        except AssertionError as error:
            raise soak.fail(cycle, str(error)) from None
        soak.stop_seconds.append(took)
        soak.say(f"stopped in {took:.3f} s, exit {code}")
        check_stop(soak, cycle, formation, code, took)


UNACKED_INDEX_KEY = "unacked_index"  # kombu's Redis transport: delivery tag -> delivered at
UNACKED_MUTEX_KEY = "unacked_mutex"  # held while one worker scans for messages to restore
VANISHED = "in no queue nor unacked, never run"


def age_unacknowledged(client: redis.Redis) -> int:
    """Make the messages still waiting unacknowledged (a worker stopped while Redis was away,
    with its acknowledgements unsent) look older than the visibility timeout, as if its 12
    minutes had passed: the next worker then puts them back on the queue (kombu's
    restore_visible), which is what would happen, only later. How many there were."""
    tags: list[str] = [str(tag) for tag in client.zrange(UNACKED_INDEX_KEY, 0, -1)]
    if tags:
        client.zadd(UNACKED_INDEX_KEY, dict.fromkeys(tags, 0))
    # The restore's mutex expires after 5 minutes, well within those 12: a worker killed while it
    # held it (its scan at start-up) would otherwise hold off the next scan for as long.
    client.delete(UNACKED_MUTEX_KEY)
    return len(tags)


def locate_job(client: redis.Redis, job: str) -> str:
    """Where a job that was never done is: on a queue, unacknowledged (and since when), or
    nowhere in Redis; and how often it ran. A failure says it, so a rare loss can be placed."""
    places = []
    for key in client.scan_iter(count=1000):  # the client decodes: keys and values are str
        kind = client.type(key)
        if kind == "list" and any(job in m for m in client.lrange(key, 0, -1)):
            places.append(f"queued on {key}")
        elif kind == "hash" and key == "unacked":
            for tag, message in client.hgetall(key).items():
                if job in message:
                    since = client.zscore(UNACKED_INDEX_KEY, tag)
                    places.append(f"unacked (tag {tag!r}, index score {since})")
    ran = int(client.get(f"executions:{job}") or 0)
    lock = client.ttl(UNACKED_MUTEX_KEY)
    if not places and not ran:
        return f"{VANISHED}; unacked_mutex ttl {lock}"
    where = ", ".join(places) or "in no queue nor unacked"
    return f"{where}; ran {ran} times; unacked_mutex ttl {lock}"


def check_jobs(soak: Soak) -> dict[str, int]:
    """A last formation drains the queue; every job's effect is recorded. Executions per job."""
    with soak.redis.client() as client:
        soak.waited_for_visibility = age_unacknowledged(client)
    with formation_of(soak, soak.cycles) as formation, soak.redis.client() as client:
        ids = soak.jobs

        def all_recorded() -> bool:
            return bool(client.exists(*(f"effect:{job}" for job in ids)) == len(ids))

        try:
            wait_for_state(
                all_recorded, f"the effects of all {len(ids)} jobs", JOB_DEADLINE_SECONDS
            )
        except AssertionError:
            missing = {
                job: locate_job(client, job) for job in ids if not client.exists(f"effect:{job}")
            }
            lost = {job: where for job, where in missing.items() if not where.startswith(VANISHED)}
            if lost:
                found = "; ".join(f"{job}: {where}" for job, where in missing.items())
                raise soak.fail(soak.cycles, f"jobs never done: {found}") from None
            soak.vanished = list(missing)
            ids = [job for job in ids if job not in missing]
        runs = dict(zip(ids, map(int, client.mget([f"executions:{j}" for j in ids])), strict=True))
        formation.signal(signal.SIGTERM)
        formation.wait(SHUTDOWN_TIMEOUT_SECONDS + DEADLINE_SECONDS)
    return runs


def run_soak(seed: int, cycles: int, directory: Path) -> str:
    """The whole soak; a one-line summary. Raises SoakFailure naming the seed and cycle."""
    redis_dir = directory / "redis"
    redis_dir.mkdir()
    server = RedisServer(redis_dir)
    try:
        soak = Soak(seed, cycles, directory, server)
        with server.client() as client:
            client.flushdb()
        for cycle in range(cycles):
            run_cycle(soak, cycle)
        runs = check_jobs(soak)
    finally:
        server.stop()
    twice = sum(1 for n in runs.values() if n > 1)
    stops = sorted(soak.stop_seconds)
    return textwrap.dedent(
        f"""\
        soak seed {seed}: {cycles} cycles, {len(runs)} of {len(soak.jobs)} jobs done
        ({twice} completed more than once, recorded once; {soak.waited_for_visibility} waited
        for the visibility timeout; {len(soak.vanished)} vanished before any worker had them,
        celery#4354: {", ".join(soak.vanished) or "none"}), stops
        {stops[0]:.2f}-{stops[-1]:.2f} s (median {stops[len(stops) // 2]:.2f} s,
        deadline {SHUTDOWN_TIMEOUT_SECONDS:g} s)"""
    ).replace("\n", " ")


def main() -> None:
    seed = int(os.environ.get("SOAK_SEED", "20261201"))
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("SOAK_CYCLES", "20"))
    with tempfile.TemporaryDirectory(prefix="procrun-soak-") as directory:
        print(run_soak(seed, cycles, Path(directory)))


if __name__ == "__main__":
    main()

"""Process-tree sampling on real process trees, and status sampling off the event loop."""

import asyncio
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from procrun.control.target import SupervisorTarget
from procrun.output.relay import OutputStyle, Relay
from procrun.procinfo import TreeSampler, TreeUsage
from procrun.reaper import Reaper
from procrun.supervisor import Supervisor
from tests.fakeclock import FakeClock
from tests.harness import DEADLINE_SECONDS, children_of, wait_for_state
from tests.sinks import CollectingSink
from tests.specs import process_spec

# Each prints `ready` once its whole tree exists: `&` has forked before `echo` runs.
FLAT = "sleep 60 & sleep 60 & echo ready; wait"  # sh and two sleeps
DEEP = "sh -c 'sleep 60 & sleep 60 & echo ready; wait' & wait"  # sh, sh, two sleeps


class Tree:
    def __init__(self, script: str) -> None:
        self.proc = subprocess.Popen(
            ["sh", "-c", script], stdout=subprocess.PIPE, start_new_session=True
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == b"ready\n"  # EOF instead if the tree failed

    @property
    def pid(self) -> int:
        return self.proc.pid

    def end(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def trees() -> Iterator[list[Tree]]:
    started = [Tree(FLAT), Tree(DEEP), Tree(FLAT)]
    yield started
    for tree in started:
        tree.end()


@pytest.fixture(params=[True, False], ids=["proc-children", "process-table-scan"])
def sampler(request: pytest.FixtureRequest) -> TreeSampler:
    """Both ways of finding a tree: /proc/<pid>/task/*/children (Linux) and one scan of the
    process table (the portable fallback)."""
    return TreeSampler(proc_children=request.param)


def gone_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: the pid names no process (until the kernel reuses it)
    return proc.pid


def test_one_call_samples_every_tree(trees: list[Tree], sampler: TreeSampler) -> None:
    flat, deep, other = trees
    gone = gone_pid()
    usage = sampler.sample_many([flat.pid, deep.pid, gone, other.pid])
    assert set(usage) == {flat.pid, deep.pid, gone, other.pid}
    assert usage[gone] is None
    counts = {pid: u.processes for pid, u in usage.items() if u is not None}
    assert counts == {flat.pid: 3, deep.pid: 4, other.pid: 3}, "grandchildren count in the tree"
    for tree in trees:
        tree_usage = usage[tree.pid]
        assert tree_usage is not None
        assert tree_usage.rss_bytes > 3 * 100_000, "summed over the members"
        assert tree_usage.cpu_percent >= 0.0


def test_a_tree_is_followed_as_members_exit_and_the_root_goes(
    trees: list[Tree], sampler: TreeSampler
) -> None:
    flat = trees[0]
    first = sampler.sample_many([flat.pid])[flat.pid]
    assert first is not None
    assert first.processes == 3
    sleeper = children_of(flat.pid)[0]
    os.kill(sleeper, signal.SIGKILL)
    wait_for_state(lambda: not Path(f"/proc/{sleeper}").exists(), "sh reaped the killed sleep")
    second = sampler.sample_many([flat.pid])[flat.pid]
    assert second is not None
    assert second.processes == 2
    flat.end()
    assert sampler.sample_many([flat.pid]) == {flat.pid: None}
    assert sampler.sample_many([]) == {}


def test_concurrent_callers_each_get_whole_answers(trees: list[Tree], sampler: TreeSampler) -> None:
    pids = [tree.pid for tree in trees]

    def counts(_: int) -> list[int | None]:
        usage = sampler.sample_many(pids)
        return [u.processes if u else None for u in (usage[pid] for pid in pids)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(counts, range(8)))
    assert results == [[3, 4, 3]] * 8


class GatedSampler(TreeSampler):
    """Holds every sample until the test releases it, from a thread the loop is not running on."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []

    def sample_many(self, pids: Sequence[int]) -> dict[int, TreeUsage | None]:
        self.threads.append(threading.current_thread())
        self.entered.set()
        if not self.release.wait(DEADLINE_SECONDS):  # on the loop, nothing would release it
            raise AssertionError("status sampled on the event loop: it could not be released")
        return super().sample_many(pids)


async def test_status_samples_off_the_event_loop(tmp_path: Path) -> None:
    spec = process_spec("web.1", "true", cwd=tmp_path)
    clock = FakeClock()
    relay = Relay(CollectingSink(), OutputStyle(), clock=clock)
    supervisor = Supervisor([spec], relay=relay, clock=clock, reaper=Reaper(adopt_orphans=False))
    sampler = GatedSampler()
    actions = SupervisorTarget(supervisor, relay.history, project_dir=tmp_path, sampler=sampler)
    status = asyncio.create_task(actions.status([]))
    await asyncio.to_thread(sampler.entered.wait, DEADLINE_SECONDS)
    assert sampler.entered.is_set()
    assert not status.done(), "the loop runs this test while status is sampling"
    sampler.release.set()
    answer = await asyncio.wait_for(status, DEADLINE_SECONDS)
    assert sampler.threads[0] is not threading.main_thread()
    assert [row["name"] for row in answer["processes"]] == ["web.1"]
    assert answer["processes"][0]["rss_bytes"] is None, "never started: nothing to sample"

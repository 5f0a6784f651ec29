"""What a formation needs of the machine's limits: the pure counting and judging, the cgroup
reading on a fake tree, and `procrun check`'s line (the limits applied at start:
tests/reliability/test_scale.py)."""

import dataclasses
import math
import resource
import subprocess
import sys
from pathlib import Path

from procrun.project.limits import (
    OWN_FDS,
    PASSING_FDS,
    Limit,
    Needs,
    describe_fds,
    fd_error,
    fds_of,
    needs_of,
    pids_of,
    pipe_note,
    plan,
)
from procrun.project.machinelimits import cgroup_pid_room
from procrun.settings import LivenessProbe, Probe, ProbeKind, ProcessSettings, ProcessSpec
from tests.specs import process_spec

HERE = Path(".")


def spec(name: str = "web.1", **settings: object) -> ProcessSpec:
    return process_spec(name, "sleep 1", cwd=HERE, settings=ProcessSettings(**settings))  # type: ignore[arg-type]


def test_a_plain_child_costs_its_output_pipe_and_one_pid() -> None:
    assert (fds_of(spec()), pids_of(spec())) == (1, 1)


def test_a_notify_socket_and_a_polled_probe_cost_one_descriptor_each() -> None:
    notify = spec(ready=Probe(ProbeKind.NOTIFY))
    watchdog = spec(alive=LivenessProbe(Probe(ProbeKind.WATCHDOG, timeout_seconds=5)))
    tcp = spec(ready=Probe(ProbeKind.TCP, "127.0.0.1:5000"))
    both = spec(ready=Probe(ProbeKind.NOTIFY), alive=LivenessProbe(Probe(ProbeKind.EXEC, "true")))
    log = spec(ready=Probe(ProbeKind.LOG, "ready"))
    assert [fds_of(s) for s in (notify, watchdog, tcp, both, log)] == [2, 2, 2, 3, 1]


def test_an_exec_probe_and_a_leading_shell_cost_a_pid_each() -> None:
    exec_probe = spec(ready=Probe(ProbeKind.EXEC, "true"))
    shell = dataclasses.replace(spec(), shell_leads=True)
    assert (pids_of(exec_probe), pids_of(shell), pids_of(spec(ready=Probe(ProbeKind.TCP)))) == (
        2,
        2,
        1,
    )


def test_needs_add_the_children_and_take_the_release_alone() -> None:
    children = [spec(f"s.{n}") for n in range(1, 301)]
    needs = needs_of(spec("release.1"), children)
    assert needs == Needs(processes=300, child_fds=300, pids=301)
    assert needs.fds == 300 + OWN_FDS + PASSING_FDS
    assert needs_of(spec("release.1"), []).child_fds == 1


def test_enough_is_left_alone() -> None:
    assert plan(100, Limit(1024, 4096)).raise_to is None
    assert not plan(100, Limit(1024, 4096)).short


def test_a_low_soft_limit_is_raised_to_twice_the_need_within_the_hard_limit() -> None:
    assert plan(1030, Limit(1024, 524288)).raise_to == 2060
    assert plan(1030, Limit(1024, 1500)).raise_to == 1500
    assert plan(1030, Limit(1024, math.inf)).raise_to == 2060


def test_raising_to_the_hard_limit_counts_what_is_in_use() -> None:
    # RLIMIT_NPROC counts the user's other processes: 40 of 50 taken leaves 10.
    assert plan(20, Limit(50, 100, used=40), to_hard=True).raise_to == 100
    assert plan(20, Limit(50, 55, used=40), to_hard=True).short


def test_short_even_at_the_hard_limit() -> None:
    p = plan(1030, Limit(512, 1000))
    assert p.short
    assert p.raise_to is None


def test_check_says_what_start_will_do() -> None:
    needs = needs_of(None, [spec(f"s.{n}") for n in range(1, 1001)])
    raised = describe_fds(needs, plan(needs.fds, Limit(1024, 524288)))
    assert raised.startswith("open files: about 1,029 at most (1,000 processes: 1,000; ")
    assert raised.endswith("ulimit -n 1,024, hard 524,288: start raises the soft limit to 2,058")
    refused = describe_fds(needs, plan(needs.fds, Limit(512, 512)))
    assert "too few, start will refuse; raise the hard limit" in refused
    assert describe_fds(needs, plan(needs.fds, Limit(20000, 20000))).endswith(": enough")


def test_the_error_is_one_line_with_the_fix() -> None:
    needs = needs_of(None, [spec(f"s.{n}") for n in range(1, 301)])
    message = fd_error(needs, plan(needs.fds, Limit(100, 100)))
    assert message == (
        "300 processes need about 329 open files, more than the hard limit allows "
        "(ulimit -Hn 100); raise the hard limit (docker run --ulimit nofile=N, "
        "LimitNOFILE=N) or run fewer (-c)"
    )


def test_the_pipe_quota_is_mentioned_only_when_outgrown() -> None:
    thousand = Needs(processes=1000, child_fds=1000, pids=1001)
    assert pipe_note(thousand, quota_pages=16384) is None  # 62.5 MiB of 64
    note = pipe_note(thousand._replace(processes=1100), quota_pages=16384)
    assert note is not None
    assert "69 MiB, over this user's pipe quota" in note
    assert pipe_note(thousand, quota_pages=0) is None  # no quota


def _cgroup(root: Path, path: str, maximum: str, current: int) -> None:
    directory = root / path.lstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pids.max").write_text(maximum + "\n")
    (directory / "pids.current").write_text(f"{current}\n")


def test_the_tightest_cgroup_on_the_way_up_limits_the_pids(tmp_path: Path) -> None:
    (tmp_path / "self").write_text("0::/pod/app\n")
    root = tmp_path / "fs"
    _cgroup(root, "/pod/app", "max", 10)
    _cgroup(root, "/pod", "500", 450)
    assert cgroup_pid_room(tmp_path / "self", root) == (50, root / "pod" / "pids.max")


def test_cgroup_v1_pids_and_no_limit(tmp_path: Path) -> None:
    (tmp_path / "self").write_text("12:cpu,cpuacct:/x\n4:pids:/docker/abc\n0::/\n")
    root = tmp_path / "fs"
    _cgroup(root, "/pids/docker/abc", "1024", 24)
    assert cgroup_pid_room(tmp_path / "self", root) == (1000, root / "pids/docker/abc/pids.max")
    (tmp_path / "none").write_text("0::/\n")
    assert cgroup_pid_room(tmp_path / "none", tmp_path / "empty") is None
    assert cgroup_pid_room(tmp_path / "missing", root) is None


def test_check_prints_the_open_files_needed_against_ulimit(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("s: sleep 1000\n")
    checked = subprocess.run(
        [sys.executable, "-m", "procrun", "check", "-c", "s=300"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 4096)),
    )
    assert checked.returncode == 0, checked.stderr
    assert (
        "open files: about 329 at most (300 processes: 300; procrun itself: 29); "
        "ulimit -n 64, hard 4,096: start raises the soft limit to 658"
    ) in checked.stdout.splitlines()
    assert any(line.startswith("processes: at least 301 ") for line in checked.stdout.splitlines())

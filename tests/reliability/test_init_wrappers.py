"""procrun under tini or dumb-init as its parent, as in an image whose ENTRYPOINT is one of them
(issue 6).

tini forwards a signal to its child only (`-g`: to the child's process group); dumb-init runs its
child in a new session and forwards to that child's whole process group. procrun runs every
process in a session and group of its own, so either way a SIGTERM reaches procrun alone, once,
and each process gets exactly one stop signal, from procrun. The wrapper exits with procrun's
exit code.
"""

import shutil
import signal
from pathlib import Path

import pytest

from tests.harness import Procrun, child, wait_until_dead

CHILDREN = Path(__file__).parent.parent / "children"
RECORDER = CHILDREN / "recorder.py"

WRAPPERS = [
    pytest.param(("tini", "--"), id="tini"),
    pytest.param(("tini", "-g", "--"), id="tini-g"),
    pytest.param(("dumb-init",), id="dumb-init"),
]


def installed(wrapper: tuple[str, ...]) -> tuple[str, ...]:
    """The wrapper's argv with its absolute path; skip, saying why, if it is not installed."""
    path = shutil.which(wrapper[0])
    if path is None:
        pytest.skip(f"{wrapper[0]} is not installed (apt-get install {wrapper[0]})")
    return (path, *wrapper[1:])


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_sigterm_to_the_wrapper_stops_every_process_once_and_exits_zero(
    tmp_path: Path, wrapper: tuple[str, ...]
) -> None:
    procfile = f"web: {child(RECORDER)}\nworker: {child(RECORDER, '--pool', '2')}\n"
    with Procrun(tmp_path, procfile, wrapper=installed(wrapper)) as procrun:
        web = int(procrun.wait_for_line(r"web.1 +\| leader (\d+) ready").group(1))
        ready = procrun.wait_for_line(r"worker.1 +\| leader (\d+) ready pgid=\d+ pool=(\d+),(\d+)")
        worker, *pool = map(int, ready.groups())
        for _ in range(2):
            procrun.wait_for_line(r"process.running ")
        procrun.signal(signal.SIGTERM)  # to the wrapper, as `docker stop` does to PID 1
        procrun.wait_for_line(r"shutdown.started .*reason='received SIGTERM'")
        assert procrun.wait() == 0
        procrun.rest()
    transcript = procrun.transcript()
    for leader in (web, worker):
        assert transcript.count(f"leader {leader} got ") == 1, transcript
        assert f"leader {leader} got SIGTERM" in transcript
    assert " got " not in "".join(line for line in transcript.splitlines() if "pool " in line), (
        "a group-wide TERM reached the pool"
    )
    assert transcript.count("shutdown.started") == 1
    assert "signal.ignored" not in transcript, "procrun got the SIGTERM more than once"
    for pid in (web, worker, *pool):
        wait_until_dead(pid)


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_the_wrapper_passes_procruns_exit_code_through(
    tmp_path: Path, wrapper: tuple[str, ...]
) -> None:
    """137: a requested stop had to SIGKILL a process that ignored its TERM at the deadline."""
    toml = '[processes.stubborn]\ngrace = "300ms"\n'
    procfile = f"stubborn: {child(RECORDER, '--ignore')}\n"
    with Procrun(tmp_path, procfile, toml=toml, wrapper=installed(wrapper)) as procrun:
        leader = int(procrun.wait_for_line(r"leader (\d+) ready").group(1))
        procrun.wait_for_line(r"process.running ")
        procrun.signal(signal.SIGTERM)
        procrun.wait_for_line(rf"leader {leader} got SIGTERM")
        procrun.wait_for_line(r"signal.sent .*signal=SIGKILL target=group")
        assert procrun.wait() == 137
        procrun.wait_for_line(r"procrun.exited .*returncode=137")
    wait_until_dead(leader)

"""The undertaker's shell script, against real process groups: at end-of-file it SIGKILLs exactly
the groups still listed, never one procrun has already forgotten (its pgid may be reused)."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from procrun.undertaker import PROGRAM_NAME, Undertaker
from tests.harness import wait_for_state


@contextmanager
def _groups(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Group leaders that echo a line back: an answer proves they are alive."""
    leaders = [
        subprocess.Popen(
            ["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        for _ in range(count)
    ]
    try:
        yield leaders
    finally:
        for leader in leaders:
            leader.kill()
            leader.communicate()


def _answers(leader: subprocess.Popen[bytes]) -> bool:
    assert leader.stdin is not None
    assert leader.stdout is not None
    leader.stdin.write(b"ping\n")
    leader.stdin.flush()
    return leader.stdout.readline() == b"ping\n"


def _reap(undertaker: Undertaker) -> int:
    """As procrun's reaper does: wait for the undertaker, then tell it its status."""
    _, status = os.waitpid(undertaker.pid, 0)
    returncode = os.waitstatus_to_exitcode(status)
    undertaker.exited(returncode)
    return returncode


def test_kills_the_listed_groups_and_spares_the_forgotten_ones() -> None:
    undertaker = Undertaker.start()
    assert undertaker is not None
    with _groups(5) as (first, forgotten, middle, also_forgotten, last):
        for leader in (first, forgotten, middle, also_forgotten, last):
            undertaker.track(leader.pid)
        undertaker.forget(forgotten.pid)  # from the middle of the list
        undertaker.forget(also_forgotten.pid)
        undertaker.forget(999_999_999)  # never tracked: must not disturb the list
        undertaker.close()  # what procrun's death looks like from the other end of the pipe
        assert _reap(undertaker) == 0

        # Every kill was sent before the undertaker exited, so a leader that still answers was
        # spared.
        for killed in (first, middle, last):
            assert killed.wait(timeout=10) == -9
        assert _answers(forgotten)
        assert _answers(also_forgotten)


def test_exits_quietly_when_nothing_is_listed() -> None:
    undertaker = Undertaker.start()
    assert undertaker is not None
    with _groups(1) as (leader,):
        undertaker.track(leader.pid)
        undertaker.forget(leader.pid)
        undertaker.close()
        assert _reap(undertaker) == 0
        assert _answers(leader)


def test_names_itself_in_ps() -> None:
    undertaker = Undertaker.start()
    assert undertaker is not None
    cmdline = Path(f"/proc/{undertaker.pid}/cmdline")
    try:
        # Popen can return (vfork) before the kernel has set the new program's arguments.
        wait_for_state(lambda: bool(cmdline.read_bytes()), "the undertaker's command line")
        assert cmdline.read_bytes().split(b"\0")[-2] == PROGRAM_NAME.encode()
    finally:
        undertaker.close()
        _reap(undertaker)

"""What each child inherits from procrun, and what it must not."""

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import Procrun, child

INSPECTOR = Path(__file__).parent / "children" / "inspector.py"
ONESHOT = "[defaults]\noneshot = true\n"
# Signals 32 and 33 are glibc's own (thread cancellation, setxid): no program can set their
# disposition through libc (EINVAL), glibc manages them itself, and a test runner may inherit them
# ignored. Bit N-1 of SigIgn is signal N.
GLIBC_RESERVED = (1 << 31) | (1 << 32)


def careless_parent() -> None:
    """Start procrun the way nohup or a shell's background job would: HUP/INT ignored, USR1
    blocked. None of it may reach the children."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})


def careful_parent() -> None:
    """What a Docker CMD or a terminal gives: nothing ignored but what Python itself ignores,
    nothing blocked. procrun then spawns with vfork, no code of its own in the child."""
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


@pytest.mark.parametrize("parent", [careless_parent, careful_parent])
def test_children_get_a_clean_signal_state_devnull_stdin_and_their_own_session(
    tmp_path: Path, parent: Callable[[], None]
) -> None:
    procfile = (
        f"inspector: {child(INSPECTOR)}\nsignals: grep -E '^Sig(Ign|Blk)' /proc/self/status\n"
    )
    with Procrun(tmp_path, procfile, toml=ONESHOT, preexec_fn=parent) as procrun:
        line = procrun.wait_for_line(r"inspector stdin=").string
        ignored = procrun.wait_for_line(r"signals.1 +\| SigIgn:\s+(\w+)").group(1)
        blocked = procrun.wait_for_line(r"signals.1 +\| SigBlk:\s+(\w+)").group(1)
        assert procrun.wait() == 0
    assert int(ignored, 16) & ~GLIBC_RESERVED == 0, (
        f"ignored signals leaked into the child: {ignored}"
    )
    assert int(blocked, 16) == 0, f"blocked signals leaked into the child: {blocked}"
    assert "stdin=/dev/null eof=True" in line
    assert "leader=True session=True" in line


def test_environment_port_and_ps(tmp_path: Path) -> None:
    script = tmp_path / "env.py"
    script.write_text(
        "import os; print('env', os.environ['PS'], os.environ['PORT'], os.environ['FROM'])\n"
    )
    (tmp_path / ".env").write_text("FROM=dotenv\n")
    procfile = f"first: {child(script)}\nsecond: {child(script)}\n"
    with Procrun(tmp_path, procfile, "-c", "second=2", toml=ONESHOT) as procrun:
        assert procrun.wait() == 0
        lines = [line for line in procrun.rest() if "| env " in line]
    assert sorted(line.split("| ")[1] for line in lines) == [
        "env first.1 5000 dotenv",
        "env second.1 5100 dotenv",
        "env second.2 5101 dotenv",
    ]
    with Procrun(
        tmp_path, procfile, "second", toml=ONESHOT, env={"PORT": "8080", "FROM": "platform"}
    ) as procrun:
        assert procrun.wait() == 0
        lines = [line for line in procrun.rest() if "| env " in line]
    assert [line.split("| ")[1] for line in lines] == ["env second.1 8080 platform"]

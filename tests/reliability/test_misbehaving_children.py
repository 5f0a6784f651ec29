"""Children that misbehave: procrun keeps its promises anyway (issue 6)."""

import signal
import time
from pathlib import Path

from tests.harness import Procrun, child, wait_until_dead

CHILDREN = Path(__file__).parent.parent / "children"
RECORDER = CHILDREN / "recorder.py"
CRASHER = CHILDREN / "crasher.py"


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return child(path)


def test_a_program_that_does_not_exist_is_an_error_before_anything_starts(
    tmp_path: Path,
) -> None:
    with Procrun(tmp_path, "web: sleep 60\nghost: no-such-program --flag\n") as procrun:
        assert procrun.wait() == 2
        assert procrun.rest() == []
    assert (
        procrun.stderr
        == 'procrun: Procfile:2: "no-such-program" not found on PATH'
        + (procrun.stderr.split("not found on PATH", 1)[1])
    )
    assert procrun.stderr.count("\n") == 1


def test_a_command_the_shell_cannot_run_gives_up_at_once(tmp_path: Path) -> None:
    """A compound command, so only the shell finds out: exit 127 at once is not retried."""
    with Procrun(tmp_path, "ghost: true && no-such-program --flag\n") as procrun:
        procrun.wait_for_line(r"ghost.1 +\| .*no-such-program: not found")
        gave_up = procrun.wait_for_line(r"process.gave_up .*process=ghost.1.*")
        assert procrun.wait() == 127
    assert "command not found (exit 127 at once)" in gave_up.group(0)
    assert "process.restarting" not in procrun.transcript()


def test_a_working_directory_that_vanished_is_reported_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "gone").mkdir()
    toml = '[processes.lost]\ncwd = "gone"\nmax_restarts = 1\n'
    # The child removes its own working directory and exits: the (immediate) restart finds it
    # gone. Removing it from the test instead would race that restart.
    with Procrun(tmp_path, "lost: rmdir ../gone\n", toml=toml) as procrun:
        procrun.wait_for_line(r"process.restarting .*process=lost.1")
        procrun.wait_for_line(r"process.spawn_failed .*No such file or directory.*process=lost.1")
        assert procrun.wait() == 127
    assert "Traceback" not in procrun.stderr + procrun.transcript()


def test_a_flood_without_newlines_is_relayed_in_bounded_pieces(tmp_path: Path) -> None:
    body = "import os\nfor _ in range(200):\n    os.write(1, b'z' * 65536)\n"
    toml = "[defaults]\noneshot = true\n"
    with Procrun(tmp_path, f"flood: {script(tmp_path, 'flood.py', body)}\n", toml=toml) as procrun:
        assert procrun.wait(60) == 0
        lines = [line for line in procrun.rest() if line.startswith("flood.1")]
    assert sum(line.count("z") for line in lines) == 200 * 65536
    assert max(len(line) for line in lines) < 70 * 1024


def test_one_ten_megabyte_line(tmp_path: Path) -> None:
    body = "import os\nos.write(1, b'M' * (10 * 1024 * 1024) + b'\\nafter\\n')\n"
    toml = "[defaults]\noneshot = true\n"
    with Procrun(tmp_path, f"big: {script(tmp_path, 'big.py', body)}\n", toml=toml) as procrun:
        assert procrun.wait(60) == 0
        lines = [line for line in procrun.rest() if line.startswith("big.1")]
    assert sum(line.count("M") for line in lines) == 10 * 1024 * 1024
    assert lines[-1].endswith("| after")


def test_threads_writing_at_once_keep_their_lines_whole(tmp_path: Path) -> None:
    body = (
        "import threading, sys\n"
        "def talk(n):\n"
        "    for i in range(2000):\n"
        "        sys.stdout.write(f'thread{n} {i:05d} ' + 'q' * 40 + '\\n')\n"
        "ts = [threading.Thread(target=talk, args=(n,)) for n in range(4)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
    )
    toml = "[defaults]\noneshot = true\n"
    with Procrun(tmp_path, f"threads: {script(tmp_path, 't.py', body)}\n", toml=toml) as procrun:
        assert procrun.wait(60) == 0
        lines = [line.split("| ", 1)[1] for line in procrun.rest() if line.startswith("threads.1")]
    assert len(lines) == 8000
    for line in lines:
        name, number, filler = line.split(" ")
        assert name.startswith("thread"), line
        assert len(number) == 5, line
        assert filler == "q" * 40, line


def test_a_child_that_closes_its_stdout_keeps_running_and_is_stopped(tmp_path: Path) -> None:
    body = (
        "import os, signal, sys, time\n"
        "print('closing stdout', flush=True)\n"
        "os.close(1); os.close(2)\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "open('alive', 'w').write(str(os.getpid()))\n"
        "while True: time.sleep(3600)\n"
    )
    with Procrun(tmp_path, f"mute: {script(tmp_path, 'mute.py', body)}\n", "-v") as procrun:
        procrun.wait_for_line(r"mute.1 +\| closing stdout")
        procrun.wait_for_line(r"process.running .*process=mute.1")
        pid = int((tmp_path / "alive").read_text())
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
        wait_until_dead(pid)
    assert "process.exited" not in procrun.transcript(), "EOF on stdout is not an exit"


def test_sigterm_during_a_restart_backoff_stops_at_once(tmp_path: Path) -> None:
    toml = '[processes.crasher]\nbackoff = "1h"\nbackoff_max = "1h"\n'
    with Procrun(tmp_path, f"crasher: {child(CRASHER, '2')}\n", toml=toml) as procrun:
        # The first restart is immediate; the second waits out the hour-long backoff.
        procrun.wait_for_line(r"process.restarting delay=3600(\.0)? process=crasher.1")
        started = time.monotonic()
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
    assert time.monotonic() - started < 5


def test_sigterm_during_the_release_phase_stops_it_and_starts_nothing(tmp_path: Path) -> None:
    procfile = f"web: {child(RECORDER)}\nrelease: {child(RECORDER)}\n"
    with Procrun(tmp_path, procfile) as procrun:
        leader = int(procrun.wait_for_line(r"release.1 +\| leader (\d+) ready").group(1))
        procrun.signal(signal.SIGTERM)
        procrun.wait_for_line(rf"leader {leader} got SIGTERM")
        # It stopped cleanly (exit 0), yet a cut-short release is no success (issue 16).
        procrun.wait_for_line(r"release.interrupted .*process=release.1")
        assert procrun.wait() == 1
        lines = procrun.rest()
    assert not any(line.startswith("web.1") for line in lines)
    assert "release.succeeded" not in procrun.transcript()

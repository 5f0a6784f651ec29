"""What reaches procrun's stdout from real children writing through real pipes."""

import fcntl
import json
import os
import random
import re
import signal
import time
from collections import defaultdict
from pathlib import Path

from procrun.output.sink import STDOUT_PIPE_BYTES
from tests.harness import (
    Procrun,
    blocked_in_write,
    bytes_written,
    child,
    peak_rss_bytes,
    procrun_child_running,
    wait_for_state,
    wait_until_dead,
)

CHILDREN = Path(__file__).parents[1] / "children"
WRITER = CHILDREN / "writer.py"
RECORDER = CHILDREN / "recorder.py"
LINE = re.compile(r"^(w\d)\.1 +\| (w\d) (\d{8}) x{40}$")


def test_mid_line_blocks_from_several_children_never_mix(tmp_path: Path) -> None:
    count = 20_000
    toml = '[defaults]\nrestart = "on-failure"\n'
    procfile = "".join(f"w{n}: {child(WRITER, f'w{n}', str(count), '4096')}\n" for n in range(3))
    with Procrun(tmp_path, procfile, toml=toml) as procrun:
        assert procrun.wait(60) == 0
        lines = procrun.rest()
    seen: dict[str, list[int]] = defaultdict(list)
    for line in lines:
        if " | " in line and not line.startswith("procrun"):
            match = LINE.match(line)
            assert match, f"garbled line: {line[:200]!r}"
            assert match.group(1) == match.group(2), f"line under the wrong prefix: {line!r}"
            seen[match.group(1)].append(int(match.group(3)))
    assert {tag: len(numbers) for tag, numbers in seen.items()} == {
        "w0": count,
        "w1": count,
        "w2": count,
    }
    for numbers in seen.values():
        assert numbers == list(range(count)), "lines of one child must keep their order"


# Lines of mixed lengths written in blocks of mixed sizes, then a last line with no newline.
UNEVEN_WRITER = """
import os, random, sys
tag, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
lines = [b"%s %06d " % (tag.encode(), n) + b"y" * rng.choice((0, 1, 40, 700, 5000))
         for n in range(3000)]
view = memoryview(b"\\n".join(lines) + b"\\nlast line of " + tag.encode())
while view:
    size = rng.choice((1, 7, 4095, 4096, 4097, 65536, 100003))
    while size and view:
        written = os.write(1, view[:size])
        view, size = view[written:], size - written
"""


def test_uneven_blocks_arrive_as_whole_lines_in_order(tmp_path: Path) -> None:
    """Reads end anywhere in a line, so the relay carries each line's start over to the next
    read: every line must come out whole, under its own prefix, in order, none lost, and the
    unfinished last line at exit too."""
    script = tmp_path / "uneven.py"
    script.write_text(UNEVEN_WRITER)
    toml = '[defaults]\nrestart = "on-failure"\n'
    procfile = "".join(f"u{n}: {child(script, f'u{n}', str(n))}\n" for n in range(3))
    with Procrun(tmp_path, procfile, toml=toml) as procrun:
        assert procrun.wait(60) == 0
        received: dict[str, list[str]] = defaultdict(list)
        for line in procrun.rest():
            name, bar, body = line.partition(" | ")
            if bar and not name.startswith("procrun"):
                received[name.strip()].append(body)
    for n in range(3):
        rng = random.Random(n)
        expected = [f"u{n} {i:06d} " + "y" * rng.choice((0, 1, 40, 700, 5000)) for i in range(3000)]
        assert received[f"u{n}.1"] == [*expected, f"last line of u{n}"]


def test_binary_and_over_long_lines_do_not_break_the_relay(tmp_path: Path) -> None:
    script = tmp_path / "nasty.py"
    script.write_text(
        "import os\n"
        "os.write(1, b'\\xff\\xfe\\x00binary\\n')\n"
        "os.write(1, b'L' * 200000 + b'\\n')\n"
        "os.write(1, b'after\\n')\n"
        "os.write(1, b'no newline at exit')\n"
    )
    toml = '[defaults]\nrestart = "on-failure"\n'
    with Procrun(tmp_path, f"nasty: {child(script)}\n", toml=toml) as procrun:
        assert procrun.wait() == 0
        lines = [line for line in procrun.rest() if line.startswith("nasty.1")]
    assert lines[0].endswith("binary")
    long_parts = [line for line in lines if "LLLL" in line]
    assert len(long_parts) == 4
    assert sum(line.count("L") for line in long_parts) == 200000
    assert lines[-2] == "nasty.1 | after"
    assert lines[-1] == "nasty.1 | no newline at exit"


def test_stdout_going_away_stops_everything_cleanly(tmp_path: Path) -> None:
    procfile = f"chatty: yes chatty\nrecorder: {child(RECORDER)}\n"
    procrun = Procrun(tmp_path, procfile, "-e", "/dev/null")
    with procrun:
        match = procrun.wait_for_line(r"leader (\d+) ready")
        leader = int(match.group(1))
        assert procrun.proc.stdout is not None
        procrun.proc.stdout.close()  # as `| head` does when it has read enough
        code = procrun.wait()
        wait_until_dead(leader)
    assert "Traceback" not in procrun.stderr
    assert code == 0, procrun.stderr


def test_a_quiet_process_gets_its_line_through_a_flood(tmp_path: Path) -> None:
    """`yes` refills stdout faster than it drains; the quiet process's one line must still come
    through (readers ready in the same pass of the loop keep their read when stdout fills)."""
    procfile = "flood: yes flood\nquiet: echo QUIET-LINE; exec sleep 600\n"
    with Procrun(tmp_path, procfile) as procrun:
        procrun.wait_for_line(r"^quiet\.1 +\| QUIET-LINE$")
        procrun.signal(signal.SIGTERM)
        procrun.rest()
        assert procrun.wait() == 0


def test_json_output_for_log_drains(tmp_path: Path) -> None:
    script = tmp_path / "hello.py"
    script.write_text("print('hello')\n")
    toml = '[defaults]\nrestart = "on-failure"\n'
    with Procrun(
        tmp_path,
        f"hello: {child(script)}\n",
        "--output-format",
        "json",
        "--log-format",
        "json",
        toml=toml,
    ) as procrun:
        assert procrun.wait() == 0
        records = [json.loads(line) for line in procrun.rest()]
    assert any(r.get("line") == "hello" and r.get("process") == "hello.1" for r in records)
    assert any(
        r.get("event") == "process.exited" and r.get("process") == "hello.1" for r in records
    )


def test_a_stalled_reader_throttles_children_and_memory_stays_bounded(tmp_path: Path) -> None:
    """60 MB of output into a stdout nobody reads: procrun must stop reading from the child, so
    the child blocks on its own write, rather than buffer the lot. Lines must not be cut by the
    partial-line flush while the child is held back."""
    count = 1_000_000
    read_end, write_end = os.pipe()
    procfile = f"w0: {child(WRITER, 'w0', str(count), '4096')}\nidle: {child(RECORDER)}\n"
    toml = '[processes.w0]\nrestart = "on-failure"\n'
    with Procrun(tmp_path, procfile, toml=toml, stdout=write_end) as procrun:
        os.close(write_end)
        writer = procrun_child_running(procrun, "writer.py")
        wait_for_state(lambda: blocked_in_write(writer), "the writer to block on its pipe")
        # A window of observation, not synchronisation: held back, the writer stays blocked with
        # little written (without back-pressure it would write its 60 MB into procrun's memory in
        # about a second, and exit).
        time.sleep(1.0)
        assert blocked_in_write(writer)
        assert bytes_written(writer) < 4 * 1024 * 1024
        with os.fdopen(read_end, "rb") as stdout:
            lines = 0
            for line in stdout:
                lines += line.startswith(b"w0.1")
                if lines == count:
                    break
            assert peak_rss_bytes(procrun.proc.pid) < 64 * 1024 * 1024
            procrun.signal(signal.SIGTERM)
            assert procrun.wait() == 0
    assert lines == count


def test_a_reader_that_goes_away_with_nothing_buffered_stops_procrun(tmp_path: Path) -> None:
    """`procrun start | head -1` with quiet children: the pipe closes while nothing is pending."""
    read_end, write_end = os.pipe()
    with Procrun(tmp_path, f"quiet: {child(RECORDER)}\n", stdout=write_end) as procrun:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as stdout:
            for line in stdout:
                if b"ready" in line:
                    break
        assert procrun.wait() == 0
    assert "Traceback" not in procrun.stderr


def test_a_slow_reader_still_gets_the_last_lines(tmp_path: Path) -> None:
    """A child held back by a stalled stdout delivers every line, the last included, once the
    reader reads again (the exit-while-paused case is tested on Relay.after_drain)."""
    script = tmp_path / "talker.py"
    script.write_text(
        "import sys\n"
        "for n in range(100000):\n"  # 6 MB: more than the pipes and procrun's buffer hold
        "    sys.stdout.write(f'line {n:05d} ' + 'y' * 50 + '\\n')\n"
        "print('LAST LINE')\n"
    )
    read_end, write_end = os.pipe()
    toml = "[processes.talker]\noneshot = true\n"
    with Procrun(tmp_path, f"talker: {child(script)}\n", toml=toml, stdout=write_end) as procrun:
        os.close(write_end)
        talker = procrun_child_running(procrun, "talker.py")
        wait_for_state(lambda: blocked_in_write(talker), "the talker to block on its pipe")
        with os.fdopen(read_end, "rb") as stdout:
            lines = [line for line in stdout if line.startswith(b"talker.1")]
        assert procrun.wait() == 0
    assert len(lines) == 100001
    assert lines[-1].endswith(b"| LAST LINE\n")


def test_stdout_stays_blocking_for_whoever_shares_it(tmp_path: Path) -> None:
    """procrun must not set O_NONBLOCK on a pipe description others write to (`2>&1`, the next
    command of a pipeline): it reopens the pipe for itself."""
    read_end, write_end = os.pipe()
    with (
        Procrun(tmp_path, f"quiet: {child(RECORDER)}\n", stdout=write_end) as procrun,
        os.fdopen(read_end, "rb") as stdout,
    ):
        for line in stdout:
            if b"ready" in line:
                break
        assert os.get_blocking(write_end), "procrun made the shared pipe non-blocking"
        os.close(write_end)
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0


def test_procrun_enlarges_its_stdout_pipe(tmp_path: Path) -> None:
    """A 1 MiB pipe lets the relay write in bigger batches than the default 64 KiB (issue 5)."""
    with Procrun(tmp_path, f"quiet: {child(RECORDER)}\n") as procrun:
        procrun.wait_for_line(r"process.running .*process=quiet.1")
        assert procrun.proc.stdout is not None
        size = fcntl.fcntl(procrun.proc.stdout.fileno(), fcntl.F_GETPIPE_SZ)
        assert size == STDOUT_PIPE_BYTES

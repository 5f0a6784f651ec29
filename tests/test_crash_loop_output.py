"""Repeated identical crashes are said once, not printed once per restart; a run that differs,
or that comes up, is shown in full."""

import signal
import sys
from pathlib import Path

from tests.harness import Procrun, write_script

FLAKY = """
import pathlib, sys, time
counter = pathlib.Path(sys.argv[1])
runs = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(runs))
if runs < int(sys.argv[2]):
    print("Traceback (most recent call last):")
    print('  File "app.py", line 1, in <module>')
    print("ModuleNotFoundError: No module named 'settings'", flush=True)
    sys.exit(1)
print(f"up after {runs - 1} crashes", flush=True)
time.sleep(600)
"""
TOML = '[defaults]\nbackoff = "10ms"\nmax_restarts = 20\nmin_uptime = "300ms"\n'


def test_the_same_traceback_is_printed_twice_then_summarised(tmp_path: Path) -> None:
    script = write_script(tmp_path, "flaky.py", FLAKY)
    command = f"{sys.executable} {script} {tmp_path / 'runs'} 7"
    with Procrun(tmp_path, f"app: {command}\n", toml=TOML) as procrun:
        procrun.wait_for_line(r"app.1 +\| up after 6 crashes")
        repeated = procrun.wait_for_line(r"process.crash_repeated .*")
        procrun.wait_for_line(r"process.crash_streak_ended .*crashes=6")
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
    transcript = procrun.transcript()
    printed = [line for line in transcript.splitlines() if line.startswith("app.1 ")]
    assert sum("No module named 'settings'" in line for line in printed) == 2, transcript
    assert "exited 3 times in" in repeated.string
    assert "last line: ModuleNotFoundError: No module named 'settings'" in repeated.string
    assert transcript.count("process.exited") == 6, "every exit is still logged"


def test_a_crash_with_other_output_is_shown(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        "counting.py",
        "import pathlib, sys\n"
        "c = pathlib.Path(sys.argv[1]); n = int(c.read_text()) + 1 if c.exists() else 1\n"
        "c.write_text(str(n)); print(f'attempt {n} failed', flush=True); sys.exit(1)\n",
    )
    toml = '[defaults]\nbackoff = "10ms"\nmax_restarts = 3\n'
    command = f"{sys.executable} {script} {tmp_path / 'runs'}"
    with Procrun(tmp_path, f"app: {command}\n", toml=toml) as procrun:
        procrun.wait_for_line(r"process.gave_up .*process=app.1")
        assert procrun.wait() == 1
    transcript = procrun.transcript()
    for attempt in range(1, 5):
        assert f"attempt {attempt} failed" in transcript
    assert "crash_repeated" not in transcript

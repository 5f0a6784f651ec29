"""procrun on a terminal, as a developer runs it: Ctrl-C typed into a real pseudo-terminal stops
the formation and, while a long grace runs, says what it waits for; a second Ctrl-C forces it."""

import os
import sys
from pathlib import Path

from tests.harness import DEADLINE_SECONDS, child
from tests.terminal import CTRL_C, Terminal

RECORDER = Path(__file__).parents[1] / "children" / "recorder.py"


def _terminal(directory: Path, procfile: str, toml: str) -> Terminal:
    (directory / "Procfile").write_text(procfile)
    (directory / "procrun.toml").write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCRUN_")}
    env["NO_COLOR"] = "1"
    return Terminal([sys.executable, "-m", "procrun", "start"], directory, env)


def test_ctrl_c_says_what_it_waits_for_and_a_second_one_forces(tmp_path: Path) -> None:
    toml = '[processes.worker]\ngrace = "60s"\nsecond_signal = "QUIT"\n'
    terminal = _terminal(tmp_path, f"worker: {child(RECORDER, '--ignore')}\n", toml)
    try:
        terminal.wait_for(r"leader \d+ ready")
        terminal.type(CTRL_C)
        terminal.wait_for(r"leader \d+ got SIGTERM")
        waiting = terminal.wait_for(r"shutdown\.waiting[^\n]*")
        assert b"worker.1 (SIGQUIT in 49 s, SIGKILL in 59 s)" in waiting.group(0)
        assert b"Ctrl-C again to force" in waiting.group(0)
        terminal.type(CTRL_C)
        forced = terminal.wait_for(r"shutdown\.forced[^\n]*")
        assert b"worker.1 gets SIGQUIT now, SIGKILL in 3 s" in forced.group(0)
        terminal.wait_for(r"leader \d+ got SIGQUIT")
        terminal.wait_for(r"procrun\.exited")
        assert terminal.proc.wait(DEADLINE_SECONDS) == 128 + 9
    finally:
        terminal.close()
    assert b"Traceback" not in terminal.screen

"""Log lines that say what happened: a stop by the signal procrun sent is a clean stop, `-t` puts
one timestamp on a line, `--output-format json` makes the whole stream JSON, and a restart's
reason goes once the process runs again."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.harness import Procrun, child, wait_for_state

RECORDER = Path(__file__).parents[1] / "children" / "recorder.py"


def test_a_process_ended_by_its_stop_signal_is_stopped_cleanly(tmp_path: Path) -> None:
    """`sleep` dies of the SIGTERM it is sent: that is the stop asked for, not a kill."""
    with Procrun(tmp_path, "nap: sleep 60\n") as procrun:
        procrun.wait_for_line(r"process.spawned .*process=nap.1")
        procrun.signal(signal.SIGTERM)
        stopped = procrun.wait_for_line(r"process.stopped .*")
        assert procrun.wait() == 0
    assert "[info]" in stopped.string
    assert "how='stopped by SIGTERM'" in stopped.string
    assert "killed by" not in procrun.transcript()


def test_timestamps_once_per_line(tmp_path: Path) -> None:
    with Procrun(tmp_path, f"web: {child(RECORDER)}\n", "-t") as procrun:
        spawned = procrun.wait_for_line(r"process.spawned .*")
        child_line = procrun.wait_for_line(r"leader \d+ ready")
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
    stamp = re.compile(r"\b\d\d:\d\d:\d\d\b")
    assert len(stamp.findall(spawned.string)) == 1, spawned.string
    assert len(stamp.findall(child_line.string)) == 1, child_line.string


def test_json_output_makes_the_whole_stream_json(tmp_path: Path) -> None:
    with Procrun(tmp_path, f"web: {child(RECORDER)}\n", "--output-format", "json") as procrun:
        procrun.wait_for_line(r"leader \d+ ready")
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
        lines = procrun.rest()
    records = [json.loads(line) for line in [*procrun.transcript().splitlines(), *lines]]
    assert any(r.get("event") == "process.spawned" for r in records)
    assert any(r.get("process") == "web.1" and "line" in r for r in records)


def test_a_restarts_reason_is_gone_once_it_runs(tmp_path: Path) -> None:
    socket = tmp_path / "procrun.sock"
    env = {"PROCRUN_SOCKET": str(socket)}
    toml = '[defaults]\nmin_uptime = "100ms"\n'
    with Procrun(tmp_path, f"web: {child(RECORDER)}\n", env=env, toml=toml) as procrun:
        procrun.wait_for_line(r"process.running .*process=web.1")

        def status() -> dict[str, object]:
            out = subprocess.run(
                [sys.executable, "-m", "procrun", "status", "--json"],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            row: dict[str, object] = json.loads(out)["processes"][0]
            return row

        restarted = subprocess.run(
            [sys.executable, "-m", "procrun", "restart", "web"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert restarted.returncode == 0, restarted.stderr
        procrun.wait_for_line(r"process.running .*process=web.1")
        wait_for_state(lambda: status()["state"] == "RUNNING", "web.1 running again")
        assert status()["reason"] is None
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0

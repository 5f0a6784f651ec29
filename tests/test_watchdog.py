"""The memory watchdog with a real child that allocates past its limit."""

import signal
import subprocess
import sys
from pathlib import Path

from procrun.settings import ProcessSettings
from procrun.watchdog import sample_interval
from tests.harness import Procrun, child

HOG = Path(__file__).parent / "children" / "hog.py"


def test_a_process_above_its_limit_is_restarted_gracefully(tmp_path: Path) -> None:
    toml = """
        [processes.hog]
        max_memory = "60MB"
        max_memory_for = "1s"
    """
    with Procrun(tmp_path, f"hog: {child(HOG, '100')}\n", toml=toml) as procrun:
        first = procrun.wait_for_line(r"hog (\d+) holds 100 MB").group(1)
        restart = procrun.wait_for_line(
            r"watchdog.restarting .*limit_bytes=60000000.*process=hog.1"
        )
        procrun.wait_for_line(r"hog stopping gracefully")
        second = procrun.wait_for_line(r"hog (\d+) holds 100 MB").group(1)
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
    assert first != second
    assert "over_seconds=" in restart.string


def test_a_process_under_its_limit_is_left_alone(tmp_path: Path) -> None:
    toml = """
        [processes.hog]
        max_memory = "500MB"
        max_memory_for = "1s"
    """
    with Procrun(tmp_path, f"hog: {child(HOG, '20')}\n", "-v", toml=toml) as procrun:
        procrun.wait_for_line(r"hog \d+ holds 20 MB")
        for _ in range(4):
            procrun.wait_for_line(r"watchdog.sampled .*process=hog.1 rss_bytes=[1-9]")
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
    assert "watchdog.restarting" not in procrun.transcript()


def test_sampling_interval() -> None:
    unlimited = ProcessSettings()
    assert sample_interval([unlimited]) is None
    limited = ProcessSettings(max_memory_bytes=1, max_memory_for_seconds=30.0)
    assert sample_interval([unlimited, limited]) == 5.0
    quick = ProcessSettings(max_memory_bytes=1, max_memory_for_seconds=0.1)
    assert sample_interval([limited, quick]) == 0.25


def test_psutil_is_not_imported_by_the_supervisor() -> None:
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, procrun.cli.runner; print('psutil' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip() == "False"

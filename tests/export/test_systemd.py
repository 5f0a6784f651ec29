"""`procrun export systemd`: the target and every instance it wants pass `systemd-analyze verify`
(no running systemd needed: the units are found through SYSTEMD_UNIT_PATH, and ExecStart's
binary must exist), with not a single warning, and carry the project's numbers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from procrun.export.units import EXPORT_MARGIN_SECONDS
from tests.export.projects import REPO, exported, sample_project, unit_values

VERIFY_SECONDS = 60.0
WORKER_GRACE_SECONDS = 660  # procrun.toml: grace = "11m"


def verify(directory: Path, *units: str) -> subprocess.CompletedProcess[str]:
    program = shutil.which("systemd-analyze")
    if program is None:
        pytest.fail("systemd-analyze not found: install systemd (apt-get install systemd)")
    # A trailing ":" keeps the system's unit directories too (multi-user.target, network-online).
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{directory}:"}
    return subprocess.run(
        [program, "verify", *units],
        env=env,
        capture_output=True,
        text=True,
        timeout=VERIFY_SECONDS,
        check=False,
    )


def verified(directory: Path, target: str) -> list[str]:
    """The instances the target wants, after the target and each of them passed."""
    (wants,) = unit_values((directory / target).read_text(), "Wants")
    instances = wants.split()
    done = verify(directory, target, *instances)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    return instances


def test_the_reference_app_as_a_target_and_templates(tmp_path: Path) -> None:
    result = exported(REPO, "systemd", "-o", str(tmp_path), "-c", "worker=2")
    names = ["procrun.target", "procrun-web@.service", "procrun-worker@.service"]
    names.append("procrun-beat@.service")
    assert result.stdout.splitlines() == [f"wrote {tmp_path / name}" for name in names]
    instances = verified(tmp_path, "procrun.target")
    # PORT names a web instance (the ports `start -c web=N` gives); the others are numbered.
    assert instances == [
        "procrun-web@5000.service",
        "procrun-worker@1.service",
        "procrun-worker@2.service",
        "procrun-beat@1.service",
    ]
    worker = (tmp_path / "procrun-worker@.service").read_text()
    (exec_start,) = unit_values(worker, "ExecStart")
    program, *args = exec_start.split()
    assert Path(program).is_absolute()
    assert os.access(program, os.X_OK)
    assert args == ["start", "worker"]
    assert unit_values(worker, "Type") == ["notify"]
    assert unit_values(worker, "NotifyAccess") == ["main"]
    assert unit_values(worker, "KillMode") == ["mixed"]
    assert unit_values(worker, "Restart") == ["on-failure"]
    (stop,) = unit_values(worker, "TimeoutStopSec")
    assert float(stop.removesuffix("s")) >= WORKER_GRACE_SECONDS + EXPORT_MARGIN_SECONDS
    assert unit_values(worker, "WorkingDirectory") == [str(REPO)]
    assert unit_values(worker, "EnvironmentFile") == [f"-{REPO / '.env'}"]
    assert unit_values(worker, "User") == [REPO.owner()]
    assert unit_values(worker, "WantedBy") == ["procrun.target"]
    assert unit_values(worker, "PartOf") == ["procrun.target"]
    environment = unit_values(worker, "Environment")
    assert f"PROCRUN_SHUTDOWN_TIMEOUT={WORKER_GRACE_SECONDS}s" in environment
    # Each instance has a control socket of its own: they share the project directory.
    assert "PROCRUN_SOCKET=%t/%N/control.sock" in environment
    web = (tmp_path / "procrun-web@.service").read_text()
    assert "PORT=%i" in unit_values(web, "Environment")
    assert any("share the node name" in note for note in result.notes)


def test_the_sample_s_release_runs_first_and_dependencies_order(tmp_path: Path) -> None:
    project = sample_project(tmp_path / "project")
    out = tmp_path / "units"
    exported(project, "systemd", "-o", str(out), "--app", "sample", "--user", "app")
    instances = verified(out, "sample.target")
    assert "sample-release@1.service" in instances
    assert "sample-clock-tick@1.service" in instances
    assert "sample-api@5400.service" in instances
    release = (out / "sample-release@.service").read_text()
    assert unit_values(release, "Type") == ["oneshot"]
    assert unit_values(release, "RemainAfterExit") == ["yes"]
    assert unit_values(release, "Restart") == []
    worker = (out / "sample-worker@.service").read_text()
    assert "sample-release@1.service" in unit_values(worker, "Requires")
    assert "sample-web@5100.service" in unit_values(worker, "After")
    assert unit_values(worker, "User") == ["app"]
    # procrun.toml's count = 2 is per supervisor: each instance runs one worker.
    (exec_start,) = unit_values(worker, "ExecStart")
    assert exec_start.split()[1:] == ["start", "-c", "worker=1", "worker"]


def test_verify_has_teeth(tmp_path: Path) -> None:
    """A unit whose ExecStart is missing fails the same check, so a pass means something."""
    project = sample_project(tmp_path / "project")
    out = tmp_path / "units"
    exported(project, "systemd", "-o", str(out), "--app", "s", "--procrun", "/nonexistent/procrun")
    done = verify(out, "s.target", "s-web@5100.service")
    assert done.returncode != 0
    assert "/nonexistent/procrun" in done.stderr

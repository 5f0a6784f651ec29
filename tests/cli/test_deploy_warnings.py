"""Deadline warnings only where they apply: a local `procrun start` (a laptop, or any container
whose stop timeout procrun cannot see) says nothing about procrun's own default graces; on a
platform that says who it is, or with platform_deadline stated, it warns; `check` lists all."""

import signal
from pathlib import Path

import pytest

from tests.harness import Procrun

PROCFILE = "worker: sleep 60\n"  # named worker: the Celery rule gives it a 600 s grace


def start_output(tmp_path: Path, env: dict[str, str]) -> str:
    with Procrun(tmp_path, PROCFILE, env=env) as procrun:
        procrun.wait_for_line(r"process.spawned .*process=worker.1")
        procrun.signal(signal.SIGTERM)
        assert procrun.wait() == 0
        procrun.rest()
    return procrun.transcript()


def test_a_local_start_does_not_warn_about_procruns_own_defaults(tmp_path: Path) -> None:
    assert "config.warning" not in start_output(tmp_path, {})


@pytest.mark.parametrize(
    "env", [{"RENDER": "true"}, {"PROCRUN_PLATFORM_DEADLINE": "10s"}], ids=["render", "stated"]
)
def test_a_known_deadline_gets_its_warning_at_start(tmp_path: Path, env: dict[str, str]) -> None:
    output = start_output(tmp_path, env)
    assert "config.warning" in output
    assert "grace 600 s is longer than" in output


def test_check_says_why_it_thinks_it_is_in_docker(tmp_path: Path) -> None:
    with Procrun(tmp_path, PROCFILE, command=("check",)) as check:
        assert check.wait() == 0
        out = "\n".join(check.rest())
    if Path("/.dockerenv").exists():
        assert "platform: docker (/.dockerenv exists: a container" in out
    else:
        assert "platform: not detected" in out
    assert "warning: worker: grace 600 s is longer than" in out, "check keeps the full list"


def test_celery_workers_sharing_a_node_name_are_reported(tmp_path: Path) -> None:
    """Three `celery ... worker` instances that all call themselves celery@<host>: a likely
    mistake, which check reports (and start logs as a config.warning)."""
    procfile = "worker: sleep 60 && celery -A app worker\n"
    with Procrun(tmp_path, procfile, "-c", "worker=3", command=("check",)) as check:
        assert check.wait() == 0
        out = "\n".join(check.rest())
    assert "worker: 3 Celery workers with the same node name" in out

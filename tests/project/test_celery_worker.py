import pytest

from procrun.project.celery_worker import celery_node_name_warning, is_celery_worker


@pytest.mark.parametrize(
    "command",
    [
        "celery -A proj worker",
        "celery worker",
        "celery -A proj worker -l info -c 4",
        "celery --app=proj worker",
        "celery -Aproj worker",
        "celery --app proj --broker redis://x worker",
        "celery -b redis://broker worker",
        "celery -A proj -q worker",
        ".venv/bin/celery -A proj worker",
        "/usr/local/bin/celery -A proj worker",
        "python -m celery -A proj worker",
        "python3.12 -m celery worker",
        "exec celery -A proj worker",
        "newrelic-admin run-program celery -A proj worker",
        "uv run celery -A proj worker",
        "env C_FORCE_ROOT=1 celery -A proj worker",
        "cd app && celery -A proj worker",
        "sh -c 'celery -A proj worker --loglevel=INFO'",
        "bash -lc \"exec celery -A 'my proj' worker\"",
        "celery -A proj worker --pidfile='/tmp/celery.pid",  # unbalanced quote
    ],
)
def test_celery_workers(command: str) -> None:
    assert is_celery_worker("jobs", command)


@pytest.mark.parametrize(
    "command",
    [
        "celery -A proj beat",
        "celery -A proj flower",
        "celery -A worker beat",  # an app named "worker" is not the subcommand
        "celery --app worker beat",
        "celery -A proj events",
        "celery -A proj inspect ping",
        "celery -A proj",
        "celery",
        "gunicorn app:app",
        "python worker.py",
        "rq worker",
        "dramatiq worker",
        "celeryd worker",
        "run --pidfile=/run/celery worker",
        "sh -c 'celery -A proj beat'",
        "celery -A proj beat; echo worker",
        "",
        "'",
    ],
)
def test_not_celery_workers(command: str) -> None:
    assert not is_celery_worker("jobs", command)


def test_a_type_named_worker_is_a_worker_whatever_it_runs() -> None:
    assert is_celery_worker("worker", "python -m jobs")
    assert not is_celery_worker("workers", "python -m jobs")


def test_several_celery_workers_without_a_node_name_are_warned_about() -> None:
    warning = celery_node_name_warning("worker", "celery -A app worker -l info", 3)
    assert warning == (
        "worker: 3 Celery workers with the same node name (celery@<host>): add "
        "-n %n-${PS}@%h to the command so that each has its own"
    )
    assert celery_node_name_warning("worker", "celery -A app worker", 1) is None, "only one"
    assert celery_node_name_warning("worker", "celery -A app worker -n w-${PS}@%h", 3) is None
    assert celery_node_name_warning("worker", "celery -A app worker --hostname=a@%h", 3) is None
    assert celery_node_name_warning("worker", "sleep 60", 3) is None, "not Celery"
    assert celery_node_name_warning("beat", "celery -A app beat", 3) is None

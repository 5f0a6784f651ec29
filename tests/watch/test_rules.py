"""Which changed files restart which processes: pure rules, no watcher."""

from pathlib import Path

import pytest

from procrun.watch.rules import WatchRules

ROOT = Path("/project")


def rules(**watches: tuple[list[str], list[str]]) -> WatchRules:
    return WatchRules(ROOT, watches, ignores=["media/", "*.log"])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("app/views.py", ["web", "worker"]),
        ("app/deep/models.py", ["web", "worker"]),
        ("templates/base.html", ["web"]),
        ("templates/emails/welcome.txt", ["web"]),
        ("app/tasks_test.py", ["web"]),  # the worker's watch_ignore
        ("README.md", []),
        ("app/__pycache__/views.cpython-311.pyc", []),
        ("app/views.pyc", []),
        (".git/index", []),
        (".venv/lib/python3.11/site-packages/django/db.py", []),
        ("node_modules/x/index.py", []),
        ("app/.views.py.swp", []),
        ("app/views.py~", []),
        ("app/.#views.py", []),
        ("app/4913", []),
        ("media/upload.py", []),  # the project's .gitignore
        ("app/debug.log", []),
    ],
)
def test_a_change_restarts_the_processes_that_watch_it(path: str, expected: list[str]) -> None:
    watching = rules(
        web=(["app/**/*.py", "templates/"], []),
        worker=(["app/**/*.py"], ["*_test.py"]),
        beat=([], []),
    )
    assert watching.processes_for(str(ROOT / path)) == expected


def test_a_path_outside_the_project_restarts_nothing() -> None:
    assert rules(web=(["*.py"], [])).processes_for("/elsewhere/app.py") == []


def test_only_processes_with_patterns_are_watched() -> None:
    assert rules(web=(["*.py"], []), beat=([], [])).watching == ["web"]


def test_the_project_gitignore_is_honoured(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("# build output\nbuild/\n*.generated.py\n")
    watching = WatchRules.for_project(tmp_path, {"web": (["*.py"], [])})
    assert watching.processes_for(str(tmp_path / "app.py")) == ["web"]
    assert watching.processes_for(str(tmp_path / "build" / "app.py")) == []
    assert watching.processes_for(str(tmp_path / "schema.generated.py")) == []


def test_no_gitignore_is_no_error(tmp_path: Path) -> None:
    assert WatchRules.for_project(tmp_path, {"web": (["*.py"], [])}).watching == ["web"]

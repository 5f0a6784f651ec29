"""Suite-wide test collection rules."""

from __future__ import annotations

from pathlib import Path

import pytest

APP_TESTS = Path(__file__).parent / "app"
SOAK = Path(__file__).parent / "reliability" / "test_soak.py"
EXAMPLE_TESTS = Path(__file__).parent / "examples"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The reference app's tests each run a whole formation (gunicorn, a Celery worker with its
    pool, Beat, a redis-server): under `pytest -n 3 --dist loadgroup` (make test) they share one
    worker, so no two formations compete for the two cores while their timing is under test."""
    for item in items:
        path = Path(str(item.path))
        if APP_TESTS in path.parents or path == SOAK:  # the soak runs the app's formation too
            item.add_marker(pytest.mark.xdist_group("formations"))
        elif path.parent == EXAMPLE_TESTS and path.name.startswith("test_"):
            # Each example's formation (tests/examples/test_<example>.py) on one worker of its
            # own, beside the app's: one whole stack per worker at a time.
            item.add_marker(pytest.mark.xdist_group(path.stem))

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
    worker, so that no two of them compete for the cores. The soak (the app's formation through
    20 cycles, over two minutes) and each example's module are groups of their own: one whole
    stack per worker at a time, and the app's group no longer waits for the soak to finish."""
    for item in items:
        path = Path(str(item.path))
        if path == SOAK:
            item.add_marker(pytest.mark.xdist_group("soak"))
        elif APP_TESTS in path.parents:
            item.add_marker(pytest.mark.xdist_group("formations"))
        elif path.parent == EXAMPLE_TESTS and path.name.startswith("test_"):
            item.add_marker(pytest.mark.xdist_group(path.stem))  # tests/examples/test_<example>.py
    # Longest first: xdist hands out work in collection order, and the soak, collected last,
    # started on whichever worker came free minutes in and ran on alone at the end.
    items.sort(key=_scheduling_rank)


def _scheduling_rank(item: pytest.Item) -> int:
    path = Path(str(item.path))
    if path == SOAK:
        return 0
    if APP_TESTS in path.parents or path.parent == EXAMPLE_TESTS:
        return 1
    return 2

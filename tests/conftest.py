"""Suite-wide test collection rules."""

from __future__ import annotations

from pathlib import Path

import pytest

APP_TESTS = Path(__file__).parent / "app"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The reference app's tests each run a whole formation (gunicorn, a Celery worker with its
    pool, Beat, a redis-server): under `pytest -n 3 --dist loadgroup` (make test) they share one
    worker, so no two formations compete for the two cores while their timing is under test."""
    for item in items:
        if APP_TESTS in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.xdist_group("formations"))

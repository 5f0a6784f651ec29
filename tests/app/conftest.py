"""Fixtures for the reference app's tests: a plain Redis per module, never the shared one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.app.redisserver import RedisServer


@pytest.fixture(scope="module")
def plain_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()

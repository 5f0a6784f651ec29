"""A control server over a fake target, on a socket in a short private directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from procrun.control.server import ControlServer
from tests.fakecontrol import FakeTarget, short_temp_dir


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    with short_temp_dir() as path:
        yield path


@pytest.fixture
def target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture
async def server(sock_dir: Path, target: FakeTarget) -> AsyncIterator[ControlServer]:
    async with ControlServer(
        sock_dir / "p.sock", target, project_dir=Path("/srv/app"), started_at=1000.0
    ) as running:
        yield running

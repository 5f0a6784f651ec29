"""The `scale` verb on the wire: what reaches the target, and what is refused before it does."""

from __future__ import annotations

from typing import Any

import pytest

from procrun.control.client import request
from procrun.control.protocol import ControlError
from procrun.control.server import ControlServer
from tests.fakecontrol import FakeTarget


async def test_scale_passes_the_counts_and_names_the_project(
    server: ControlServer, target: FakeTarget
) -> None:
    result = await request(server.path, {"verb": "scale", "counts": {"worker": 3, "web": 0}})
    assert result == {
        "scaled": [
            {
                "type": "worker",
                "before": 2,
                "after": 3,
                "started": ["worker.3"],
                "stopped": [],
            },
            {"type": "web", "before": 1, "after": 0, "started": [], "stopped": ["web.1"]},
        ],
        "project_dir": "/srv/app",
    }
    assert target.calls == [("scale", {"worker": 3, "web": 0})]


@pytest.mark.parametrize("count", [0, 1000])
async def test_counts_from_0_to_the_instance_limit_are_accepted(
    server: ControlServer, target: FakeTarget, count: int
) -> None:
    await request(server.path, {"verb": "scale", "counts": {"worker": count}})
    assert target.calls == [("scale", {"worker": count})]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"verb": "scale"}, '"counts" must be an object of process types and counts'),
        ({"verb": "scale", "counts": {}}, 'like {"worker": 3}, got {}'),
        ({"verb": "scale", "counts": ["worker", 3]}, 'got ["worker", 3]'),
        ({"verb": "scale", "counts": "worker=3"}, 'got "worker=3"'),
        (
            {"verb": "scale", "counts": {f"t{i}": 1 for i in range(1001)}},
            '"counts" must be an object of process types',
        ),
        (
            {"verb": "scale", "counts": {"worker.2": 1}},
            '"worker.2" is an instance: scale takes process types, e.g. worker=3',
        ),
        ({"verb": "scale", "counts": {"../etc": 1}}, '"../etc" is not a process type'),
        ({"verb": "scale", "counts": {"": 1}}, '"" is not a process type'),
        (
            {"verb": "scale", "counts": {"worker": -1}},
            'count for "worker" must be a whole number from 0 to 1000, got -1',
        ),
        ({"verb": "scale", "counts": {"worker": 1001}}, "from 0 to 1000, got 1001"),
        ({"verb": "scale", "counts": {"worker": "3"}}, 'got "3"'),
        ({"verb": "scale", "counts": {"worker": 1.5}}, "got 1.5"),
        ({"verb": "scale", "counts": {"worker": True}}, "got true"),
        ({"verb": "scale", "counts": {"worker": None}}, "got null"),
        ({"verb": "scale", "counts": {"web": 1, "worker": -1}}, 'count for "worker"'),
        (
            {"verb": "scale", "counts": {"worker": 1}, "names": ["worker"]},
            'unknown field "names" for scale: valid fields are counts',
        ),
        ({"verb": "scale", "counts": {"nope": 1}}, "unknown process 'nope'"),  # from the target
    ],
)
async def test_bad_scales_get_an_error_reply_and_nothing_acts(
    server: ControlServer, target: FakeTarget, payload: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ControlError) as raised:
        await request(server.path, payload)
    assert expected in str(raised.value)
    reached = [("scale", {"nope": 1})] if payload.get("counts") == {"nope": 1} else []
    assert target.calls == reached, "only a request valid on the wire reaches the target"

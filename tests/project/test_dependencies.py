"""depends_on: its forms, its checks against the Procfile, and the start order."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from procrun.errors import ConfigError
from procrun.project.config import load_config
from procrun.project.dependencies import find_cycle, start_waves, waves_of
from procrun.project.formation import Formation, build_formation
from procrun.project.procfile import parse_procfile
from procrun.settings import Condition

PROCFILE = (
    "release: python manage.py migrate\n"
    "redis: redis-server\n"
    "web: gunicorn app:app\n"
    "worker: celery -A proj worker\n"
    "beat: celery -A proj beat\n"
    "seed: python seed.py\n"
)
TWO_CYCLE = '[processes.worker]\ndepends_on = ["beat"]\n[processes.beat]\ndepends_on = ["worker"]\n'
STARTED, READY, COMPLETED = Condition.STARTED, Condition.READY, Condition.COMPLETED


def build(
    tmp_path: Path,
    toml: str,
    procfile: str = PROCFILE,
    *,
    only: Sequence[str] = (),
    counts: Mapping[str, int] | None = None,
) -> Formation:
    (tmp_path / "procrun.toml").write_text(toml)
    return build_formation(
        parse_procfile(procfile, Path("Procfile")),
        load_config(tmp_path),
        {},
        real_keys=frozenset(),
        directory=tmp_path,
        only=only,
        counts=counts,
    )


def error_of(tmp_path: Path, toml: str, procfile: str = PROCFILE) -> str:
    with pytest.raises(ConfigError) as info:
        build(tmp_path, toml, procfile)
    return str(info.value).removeprefix(f"{tmp_path}/")


def depends_on(formation: Formation, kind: str) -> dict[str, Condition]:
    spec = next(spec for spec in formation.processes if spec.kind == kind)
    return dict(spec.settings.depends_on)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('depends_on = ["redis"]', {"redis": READY}),
        # The list form waits for a one-shot to complete: the release, or oneshot = true.
        ('depends_on = ["release", "redis"]', {"release": COMPLETED, "redis": READY}),
        ('depends_on = ["seed"]\n[processes.seed]\noneshot = true', {"seed": COMPLETED}),
        ('depends_on = ["seed"]\n[defaults]\noneshot = true', {"seed": COMPLETED}),
        (
            'depends_on = ["seed"]\n[defaults]\noneshot = true\n[processes.seed]\noneshot = false',
            {"seed": READY},
        ),
        (
            'depends_on = { redis = "started", release = "completed", seed = "ready" }',
            {"redis": STARTED, "release": COMPLETED, "seed": READY},
        ),
        ('[processes.web.depends_on]\nredis = "ready"', {"redis": READY}),
        ("depends_on = []", {}),
        ("grace = 1", {}),
    ],
)
def test_forms(tmp_path: Path, toml: str, expected: dict[str, Condition]) -> None:
    if not toml.startswith("["):
        toml = f"[processes.web]\n{toml}"
    assert depends_on(build(tmp_path, f"{toml}\n"), "web") == expected


def test_a_type_left_out_of_the_formation_is_no_error(tmp_path: Path) -> None:
    """`procrun start web` in a container of its own: the supervisor ignores the redis one."""
    formation = build(tmp_path, '[processes.web]\ndepends_on = ["redis"]\n', only=("web",))
    assert depends_on(formation, "web") == {"redis": READY}
    assert waves_of(formation.processes) == [["web"]]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[processes.web]\ngrace = "5s"\ndepends_on = ["redsi"]\n',
            'procrun.toml:3: depends_on: no Procfile entry "redsi"; did you mean "redis"?',
        ),
        (
            '[processes.web]\ndepends_on = { postgres = "ready" }\n',
            'procrun.toml:2: depends_on: no Procfile entry "postgres"',
        ),
        (
            '[processes.worker]\ndepends_on = ["worker"]\n',
            'procrun.toml:2: depends_on: "worker" depends on itself',
        ),
        (
            '[processes.worker]\ndepends_on = { web = "completed" }\n',
            "procrun.toml:2: depends_on: web is not a one-shot: it never completes; "
            "use ready or started",
        ),
        (
            TWO_CYCLE,
            "procrun.toml:2: depends_on: cycle worker -> beat -> worker",
        ),
        (
            # A cycle of three, named from the table that comes first in the Procfile.
            '[processes.beat]\ndepends_on = ["web"]\n'
            '[processes.web]\ndepends_on = { worker = "started" }\n'
            '[processes.worker]\ndepends_on = ["beat"]\n',
            "procrun.toml:4: depends_on: cycle web -> worker -> beat -> web",
        ),
        (
            '[processes.release]\ndepends_on = ["redis"]\n',
            "procrun.toml:2: depends_on: release runs before every other process starts, so it "
            "cannot wait for one",
        ),
        (
            '[defaults]\ndepends_on = ["redis"]\n',
            "procrun.toml:2: depends_on belongs in [processes.<name>], not [defaults]",
        ),
        (
            '[processes.web]\ndepends_on = "redis"\n',
            'procrun.toml:2: depends_on must be a list like ["redis"] or a table like '
            '{ redis = "ready" }, got "redis"',
        ),
        (
            "[processes.web]\ndepends_on = [1]\n",
            "procrun.toml:2: depends_on must list process names, got 1",
        ),
        (
            '[processes.web]\ndepends_on = ["redis", "redis"]\n',
            'procrun.toml:2: depends_on: "redis" is listed twice',
        ),
        (
            '[processes.web]\ndepends_on = { redis = "up" }\n',
            'procrun.toml:2: depends_on.redis must be one of started, ready, completed, got "up"',
        ),
    ],
)
def test_errors(tmp_path: Path, toml: str, message: str) -> None:
    assert error_of(tmp_path, toml) == message


def test_a_table_for_another_procfile_is_not_checked(tmp_path: Path) -> None:
    """One procrun.toml may serve Procfile and Procfile.dev: a table for a name this Procfile
    lacks already gets a warning, so its depends_on is not held against this Procfile."""
    formation = build(tmp_path, '[processes.mailer]\ndepends_on = ["smtp"]\n')
    assert "mailer" not in {spec.kind for spec in formation.processes}


def test_checked_even_when_the_type_is_not_started(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cycle"):
        build(tmp_path, TWO_CYCLE, only=("web",))


@pytest.mark.parametrize(
    ("dependencies", "waves"),
    [
        ({}, []),
        ({"web": []}, [["web"]]),
        (
            {"redis": [], "web": ["redis"], "worker": ["redis"], "beat": ["worker"]},
            [["redis"], ["web", "worker"], ["beat"]],
        ),
        # Procfile order within a wave, whatever the order of the dependencies.
        (
            {"web": ["redis"], "worker": ["redis"], "beat": ["worker"], "redis": []},
            [["redis"], ["web", "worker"], ["beat"]],
        ),
        ({"worker": ["release", "redis"], "web": []}, [["worker", "web"]]),
        ({"a": ["b", "c"], "b": ["c"], "c": []}, [["c"], ["b"], ["a"]]),
    ],
)
def test_start_waves(dependencies: dict[str, list[str]], waves: list[list[str]]) -> None:
    assert start_waves(dependencies) == waves


def test_start_waves_refuses_a_cycle() -> None:
    with pytest.raises(ValueError, match="cycle"):
        start_waves({"a": ["b"], "b": ["a"]})


def test_find_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": [], "c": ["a"], "a": ["b"], "b": ["c"]}) == ["c", "a", "b", "c"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["elsewhere"]}) is None


def test_waves_of_a_formation(tmp_path: Path) -> None:
    toml = (
        '[processes.web]\ndepends_on = ["redis", "release"]\n'
        '[processes.worker]\ndepends_on = ["redis"]\n'
        '[processes.beat]\ndepends_on = ["worker"]\n'
    )
    formation = build(tmp_path, toml, counts={"worker": 2})
    assert waves_of(formation.processes) == [["redis", "seed"], ["web", "worker"], ["beat"]]

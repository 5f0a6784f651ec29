"""Overlays: `-f Procfile -f Procfile.dev` and `--config procrun.toml --config procrun.dev.toml`
merged in order, each entry and setting keeping the file and line it came from."""

from pathlib import Path

import pytest

from procrun.errors import ConfigError
from procrun.project.config import load_config, settings_for
from procrun.project.formation import build_formation
from procrun.project.procfile import (
    Procfile,
    ProcfileEntry,
    Removal,
    load_procfiles,
    parse_procfile,
)
from procrun.settings import Condition

BASE = Path("Procfile")
DEV = Path("Procfile.dev")
LOCAL = Path("Procfile.local")
PROCFILE = "web: gunicorn app\nworker: celery -A app worker\nbeat: celery -A app beat\n"


def merged(*overlays: tuple[str, Path], base: str = PROCFILE) -> Procfile:
    procfile = parse_procfile(base, BASE)
    for text, path in overlays:
        procfile = parse_procfile(text, path, procfile)
    return procfile


def error_of(*overlays: tuple[str, Path], base: str = PROCFILE) -> str:
    with pytest.raises(ConfigError) as info:
        merged(*overlays, base=base)
    return str(info.value)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# --- Procfile overlays ---------------------------------------------------------------------


def test_a_new_entry_comes_after_the_base_and_a_replaced_one_keeps_its_place() -> None:
    procfile = merged(("# dev\nredis: redis-server\nworker: celery -A app worker -l debug\n", DEV))
    assert procfile.names == ("web", "worker", "beat", "redis")
    assert procfile.paths == (BASE, DEV)
    assert procfile.entries == (
        ProcfileEntry("web", "gunicorn app", 1, BASE),
        ProcfileEntry("worker", "celery -A app worker -l debug", 3, DEV, replaces="Procfile:2"),
        ProcfileEntry("beat", "celery -A app beat", 3, BASE),
        ProcfileEntry("redis", "redis-server", 2, DEV),
    )
    assert [entry.source for entry in procfile.entries] == [
        "Procfile:1",
        "Procfile.dev:3",
        "Procfile:3",
        "Procfile.dev:2",
    ]


def test_new_entries_keep_their_file_s_order_file_after_file() -> None:
    procfile = merged(("b: x\na: y\n", DEV), ("d: z\nc: w\n", LOCAL))
    assert procfile.names == ("web", "worker", "beat", "b", "a", "d", "c")


def test_a_later_overlay_replaces_an_earlier_overlay_s_entry() -> None:
    procfile = merged(("worker: one\n", DEV), ("worker: two\n", LOCAL))
    worker = procfile.get("worker")
    assert worker == ProcfileEntry("worker", "two", 1, LOCAL, replaces="Procfile.dev:1")
    assert procfile.names == ("web", "worker", "beat")


def test_name_tilde_removes_an_entry() -> None:
    procfile = merged(("beat: ~\nredis: redis-server\n", DEV))
    assert procfile.names == ("web", "worker", "redis")
    assert procfile.removals == (Removal("beat", "Procfile.dev:1", "Procfile:3"),)


def test_a_removed_name_defined_again_later_comes_last() -> None:
    procfile = merged(("web: ~\n", DEV), ("web: uvicorn app\n", LOCAL))
    assert procfile.names == ("worker", "beat", "web")
    assert procfile.get("web") == ProcfileEntry("web", "uvicorn app", 1, LOCAL)


def test_an_overlay_with_no_entries_changes_nothing() -> None:
    procfile = merged(("# nothing for development yet\n", DEV))
    assert procfile.entries == parse_procfile(PROCFILE, BASE).entries
    assert procfile.paths == (BASE, DEV)


def test_removing_what_no_earlier_file_defines() -> None:
    assert error_of(("# dev\nredis: ~\n", DEV)) == (
        'Procfile.dev:2: nothing to remove: no earlier Procfile defines "redis"'
    )
    assert error_of(("wroker: ~\n", DEV)) == (
        'Procfile.dev:1: nothing to remove: no earlier Procfile defines "wroker"; '
        'did you mean "worker"?'
    )
    # The first file has nothing before it.
    assert error_of(base="web: ~\n") == (
        'Procfile:1: nothing to remove: no earlier Procfile defines "web"'
    )


def test_removing_every_entry() -> None:
    assert error_of(("web: ~\nworker: ~\nbeat: ~\n", DEV)) == (
        'Procfile.dev: no processes left: its "<name>: ~" lines remove every entry'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "redis redis-server\n",
            'Procfile.dev:1: expected "<name>: <command>", got "redis redis-server"',
        ),
        (
            "\n: redis-server\n",
            'Procfile.dev:2: expected "<name>: <command>", got ": redis-server"',
        ),
        (": ~\n", 'Procfile.dev:1: expected "<name>: <command>", got ": ~"'),
        ("redis:\n", 'Procfile.dev:1: process "redis" has no command'),
        (
            "web: a\nweb: ~\n",
            'Procfile.dev:2: duplicate process "web" (first defined on line 1)',
        ),
    ],
)
def test_a_bad_line_in_an_overlay_names_the_overlay(text: str, message: str) -> None:
    assert error_of((text, DEV)) == message


def test_load_procfiles_merges_in_order(tmp_path: Path) -> None:
    base = write(tmp_path, "Procfile", PROCFILE)
    dev = write(tmp_path, "Procfile.dev", "redis: redis-server\n")
    procfile = load_procfiles([base, dev])
    assert procfile.paths == (base, dev)
    assert procfile.get("redis") == ProcfileEntry("redis", "redis-server", 1, dev)


def test_a_missing_overlay_suggests_a_file_beside_it(tmp_path: Path) -> None:
    base = write(tmp_path, "Procfile", PROCFILE)
    write(tmp_path, "Procfile.dev", "redis: redis-server\n")
    with pytest.raises(ConfigError) as info:
        load_procfiles([base, tmp_path / "Procfile.devv"])
    assert str(info.value) == (
        f"-f/--procfile: no such file: {tmp_path}/Procfile.devv; "
        f'did you mean "{tmp_path}/Procfile.dev"?'
    )
    with pytest.raises(ConfigError) as info:
        load_procfiles([base, tmp_path / "elsewhere"])
    assert str(info.value) == f"-f/--procfile: no such file: {tmp_path}/elsewhere"


def test_each_instance_names_the_file_of_its_entry(tmp_path: Path) -> None:
    procfile = merged(("redis: redis-server\nweb: uvicorn app\n", DEV))
    formation = build_formation(
        procfile, load_config(tmp_path), {}, real_keys=frozenset(), directory=tmp_path
    )
    sources = {spec.name: spec.source for spec in formation.processes}
    assert sources == {
        "web.1": "Procfile.dev:2",
        "worker.1": "Procfile:2",
        "beat.1": "Procfile:3",
        "redis.1": "Procfile.dev:1",
    }
    # PORT follows the merged order: a replaced entry keeps its type's port.
    assert [spec.env["PORT"] for spec in formation.processes] == ["5000", "5100", "5200", "5300"]


# --- procrun.toml overlays -----------------------------------------------------------------

TOML = """\
shutdown_timeout = "290s"
on_give_up = "continue"

[defaults]
grace = "20s"
env = { LOG_FORMAT = "json", LOG_LEVEL = "INFO" }

[processes.worker]
grace = "11m"
second_signal_margin = "10s"
env = { CELERY_CONCURRENCY = "4", QUEUE = "default" }
"""
DEV_TOML = """\
shutdown_timeout = "5s"

[defaults]
env = { LOG_FORMAT = "text" }

[processes.worker]
grace = "30s"
depends_on = ["redis"]
env = { CELERY_CONCURRENCY = "1" }

[processes.redis]
grace = "5s"
"""


def test_later_files_win_key_by_key_and_env_merges_by_variable(tmp_path: Path) -> None:
    base = write(tmp_path, "procrun.toml", TOML)
    dev = write(tmp_path, "procrun.dev.toml", DEV_TOML)
    config = load_config(tmp_path, base, dev)
    assert config.sources == (base, dev)
    # Top-level keys replace; those the overlay does not set stay.
    assert config.shutdown_timeout_seconds == 5.0
    assert config.on_give_up == "continue"
    worker = settings_for("worker", "celery -A app worker", config)
    assert worker.grace_seconds == 30.0  # the overlay's
    assert worker.second_signal_margin_seconds == 10.0  # the base's, untouched
    assert dict(worker.env) == {
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
        "CELERY_CONCURRENCY": "1",
        "QUEUE": "default",
    }
    web = settings_for("web", "gunicorn app", config)
    assert web.grace_seconds == 20.0  # [defaults] grace, which the overlay leaves alone
    assert dict(web.env) == {"LOG_FORMAT": "text", "LOG_LEVEL": "INFO"}
    assert settings_for("redis", "redis-server", config).grace_seconds == 5.0
    # Where each process table first appears, for the warning about a name no Procfile has.
    assert dict(config.tables) == {"worker": f"{base}:8", "redis": f"{dev}:11"}


def test_the_default_lookup_is_replaced_by_the_files_named(tmp_path: Path) -> None:
    write(tmp_path, "procrun.toml", TOML)
    dev = write(tmp_path, "procrun.dev.toml", DEV_TOML)
    config = load_config(tmp_path, dev)
    assert config.sources == (dev,)
    assert config.on_give_up == "shutdown"


def test_an_error_in_an_overlay_names_the_overlay(tmp_path: Path) -> None:
    base = write(tmp_path, "procrun.toml", TOML)
    dev = write(tmp_path, "procrun.dev.toml", '[processes.redis]\n\ngrace = "soon"\n')
    with pytest.raises(ConfigError, match=rf"^{dev}:3: grace: invalid duration 'soon'"):
        load_config(tmp_path, base, dev)


def test_a_missing_config_overlay_suggests_a_file_beside_it(tmp_path: Path) -> None:
    base = write(tmp_path, "procrun.toml", TOML)
    write(tmp_path, "procrun.dev.toml", DEV_TOML)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, base, tmp_path / "procrun.dev.tom")
    assert str(info.value) == (
        f"--config: no such file: {tmp_path}/procrun.dev.tom; "
        f'did you mean "{tmp_path}/procrun.dev.toml"?'
    )


def test_depends_on_is_checked_against_the_merged_files(tmp_path: Path) -> None:
    base = write(tmp_path, "procrun.toml", TOML)
    dev = write(tmp_path, "procrun.dev.toml", DEV_TOML)
    config = load_config(tmp_path, base, dev)
    with_redis = merged(("redis: redis-server\n", DEV))
    formation = build_formation(with_redis, config, {}, real_keys=frozenset(), directory=tmp_path)
    (worker,) = [spec for spec in formation.processes if spec.kind == "worker"]
    assert dict(worker.settings.depends_on) == {"redis": Condition.READY}
    # Without the Procfile overlay that defines redis, the dev settings' line is named.
    with pytest.raises(ConfigError) as info:
        build_formation(merged(), config, {}, real_keys=frozenset(), directory=tmp_path)
    assert str(info.value) == f'{dev}:8: depends_on: no Procfile entry "redis"'

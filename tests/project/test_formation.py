import signal
from collections.abc import Mapping, Sequence, Set
from pathlib import Path

import pytest

from procrun.errors import UsageError
from procrun.project.config import Config, load_config
from procrun.project.formation import Formation, build_formation
from procrun.project.procfile import parse_procfile
from procrun.settings import RestartPolicy

PROCFILE = parse_procfile(
    "release: python manage.py migrate\n"
    "web: gunicorn app:app\n"
    "worker: celery -A proj worker\n"
    "beat: celery -A proj beat\n",
    Path("Procfile"),
)
HERE = Path("/srv/app")


def build(
    config: Config | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    real_keys: Set[str] = frozenset(),
    counts: Mapping[str, int] | None = None,
    only: Sequence[str] = (),
    base_port: int = 5000,
    run_release: bool = True,
) -> Formation:
    return build_formation(
        PROCFILE,
        config or Config(),
        environ or {},
        real_keys=real_keys,
        directory=HERE,
        counts=counts,
        only=only,
        base_port=base_port,
        run_release=run_release,
    )


def names(formation: Formation) -> list[str]:
    return [spec.name for spec in formation.processes]


def test_one_instance_per_type_in_procfile_order() -> None:
    formation = build()
    assert names(formation) == ["web.1", "worker.1", "beat.1"]
    web = formation.processes[0]
    assert (web.kind, web.index, web.command, web.cwd) == ("web", 1, "gunicorn app:app", HERE)
    assert web.source == "Procfile:2"


def test_counts_from_the_command_line() -> None:
    formation = build(counts={"web": 3, "beat": 0})
    assert names(formation) == ["web.1", "web.2", "web.3", "worker.1"]
    assert [spec.index for spec in formation.processes] == [1, 2, 3, 1]


def test_command_line_count_beats_config_count(tmp_path: Path) -> None:
    (tmp_path / "procrun.toml").write_text(
        "[processes.web]\ncount = 2\n[processes.beat]\ncount = 0\n"
    )
    config = load_config(tmp_path)
    assert names(build(config)) == ["web.1", "web.2", "worker.1"]
    assert names(build(config, counts={"web": 1, "beat": 1})) == ["web.1", "worker.1", "beat.1"]


def test_only() -> None:
    assert names(build(only=["beat", "web"])) == ["web.1", "beat.1"]


UNKNOWN = (
    'unknown process "wrker"; did you mean "worker"?; '
    "the Procfile defines: release, web, worker, beat"
)


def test_unknown_name_in_counts() -> None:
    with pytest.raises(UsageError) as info:
        build(counts={"wrker": 2})
    assert str(info.value) == UNKNOWN


def test_unknown_name_in_only() -> None:
    with pytest.raises(UsageError) as info:
        build(only=["web", "wrker"])
    assert str(info.value) == UNKNOWN


def test_negative_count() -> None:
    with pytest.raises(UsageError, match=r'^count for "web" must be 0 or more, got -1$'):
        build(counts={"web": -1})


def test_release_is_separate_and_runs_once() -> None:
    formation = build(counts={"web": 2})
    release = formation.release
    assert release is not None
    assert release.name == "release.1"
    assert release.settings.oneshot
    assert release.settings.restart is RestartPolicy.NEVER
    assert all(spec.kind != "release" for spec in formation.processes)


def test_release_with_only() -> None:
    assert build(only=["web"]).release is None
    formation = build(only=["release"])
    assert formation.release is not None
    assert formation.processes == ()
    assert build(only=["release", "web"]).release is not None


def test_release_skipped() -> None:
    assert build(run_release=False).release is None
    assert build(counts={"release": 0}).release is None
    with pytest.raises(UsageError) as info:
        build(counts={"release": 2})
    assert str(info.value) == '"release" runs once: its count can be 0 (skip it) or 1'


def test_release_config_cannot_make_it_restart(tmp_path: Path) -> None:
    (tmp_path / "procrun.toml").write_text(
        '[processes.release]\nrestart = "always"\noneshot = false\ncount = 3\n'
    )
    release = build(load_config(tmp_path)).release
    assert release is not None
    assert (release.settings.restart, release.settings.oneshot) == (RestartPolicy.NEVER, True)


def test_settings_come_from_config_and_celery_rule() -> None:
    worker = build().processes[1]
    assert worker.settings.second_signal is signal.SIGQUIT
    assert worker.settings.grace_seconds == 600.0


def test_foreman_ports() -> None:
    formation = build(counts={"web": 2, "worker": 2})
    ports = {spec.name: spec.env["PORT"] for spec in formation.processes}
    # Types are numbered over the whole Procfile, release included, whatever is selected.
    assert ports == {
        "web.1": "5100",
        "web.2": "5101",
        "worker.1": "5200",
        "worker.2": "5201",
        "beat.1": "5300",
    }
    assert formation.release is not None
    assert formation.release.env["PORT"] == "5000"
    assert build(only=["beat"]).processes[0].env["PORT"] == "5300"
    assert build(base_port=8000).processes[0].env["PORT"] == "8100"


def test_port_from_the_environment_is_passed_through() -> None:
    formation = build(environ={"PORT": "10000"}, real_keys={"PORT"}, counts={"web": 2})
    assert {spec.env["PORT"] for spec in formation.processes} == {"10000"}


def test_port_from_config_env(tmp_path: Path) -> None:
    (tmp_path / "procrun.toml").write_text('[processes.web]\nenv = { PORT = "8080" }\n')
    formation = build(load_config(tmp_path))
    assert [spec.env["PORT"] for spec in formation.processes] == ["8080", "5200", "5300"]


def test_port_out_of_range() -> None:
    with pytest.raises(UsageError) as info:
        build(base_port=65400)
    assert str(info.value) == "worker.1 would get PORT 65600, outside 1-65535: change the base port"


def test_environment_precedence(tmp_path: Path) -> None:
    (tmp_path / "procrun.toml").write_text(
        '[processes.web]\nenv = { FROM_TOML = "toml", SHARED = "toml", PLATFORM = "toml" }\n'
    )
    environ = {"PLATFORM": "real", "SHARED": "dotenv", "ONLY_DOTENV": "dotenv", "PS": "x"}
    web = build(load_config(tmp_path), environ, real_keys={"PLATFORM", "PS"}).processes[0]
    # real environment > procrun.toml env > .env
    assert web.env["PLATFORM"] == "real"
    assert web.env["SHARED"] == "toml"
    assert web.env["FROM_TOML"] == "toml"
    assert web.env["ONLY_DOTENV"] == "dotenv"
    assert web.env["PS"] == "web.1"


def test_ps_and_pythonunbuffered() -> None:
    worker = build(counts={"worker": 2}).processes[2]
    assert worker.env["PS"] == "worker.2"
    assert worker.env["PYTHONUNBUFFERED"] == "1"
    kept = build(environ={"PYTHONUNBUFFERED": "0"}, real_keys={"PYTHONUNBUFFERED"}).processes[0]
    assert kept.env["PYTHONUNBUFFERED"] == "0"


def test_instances_do_not_share_a_mutable_environment() -> None:
    web = build(counts={"web": 2}).processes
    assert web[0].env is not web[1].env
    with pytest.raises(TypeError):
        web[0].env["X"] = "1"  # type: ignore[index]


def test_cwd_from_config(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "procrun.toml").write_text('[processes.worker]\ncwd = "app"\n')
    formation = build(load_config(tmp_path))
    assert [spec.cwd for spec in formation.processes] == [HERE, tmp_path / "app", HERE]

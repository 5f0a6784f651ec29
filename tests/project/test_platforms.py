import signal
from pathlib import Path

import pytest

from procrun.project.formation import Formation
from procrun.project.platforms import describe_platform, detect_platform, grace_warnings
from procrun.settings import ProcessSettings, ProcessSpec

NO_DOCKERENV = Path("/nonexistent/.dockerenv")
WORKER = ProcessSettings(grace_seconds=600.0, second_signal=signal.SIGQUIT)
WEB = ProcessSettings(grace_seconds=5.0)
ADVICE = "set shutdown_timeout (or --shutdown-timeout) to your platform's limit minus a margin"


def spec(kind: str, settings: ProcessSettings, index: int = 1) -> ProcessSpec:
    return ProcessSpec(
        name=f"{kind}.{index}",
        kind=kind,
        index=index,
        command="x",
        argv=("x",),
        env={},
        cwd=Path("/"),
        settings=settings,
    )


def formation(*specs: ProcessSpec, release: ProcessSpec | None = None) -> Formation:
    return Formation(release=release, processes=specs)


@pytest.mark.parametrize(
    ("environ", "platform"),
    [
        ({"RENDER": "true", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "render"),
        ({"DYNO": "web.1"}, "heroku"),
        ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "kubernetes"),
        ({"RENDER": "false"}, None),
        ({}, None),
    ],
)
def test_detect_platform_from_environment(environ: dict[str, str], platform: str | None) -> None:
    assert detect_platform(environ, dockerenv=NO_DOCKERENV) == platform


def test_detect_docker(tmp_path: Path) -> None:
    dockerenv = tmp_path / ".dockerenv"
    dockerenv.touch()
    assert detect_platform({}, dockerenv=dockerenv) == "docker"
    assert detect_platform({"DYNO": "web.1"}, dockerenv=dockerenv) == "heroku"


def test_grace_cut_by_the_shutdown_deadline() -> None:
    warnings = grace_warnings(
        formation(spec("web", WEB), spec("worker", WORKER), spec("worker", WORKER, 2)), 25.0, None
    )
    assert warnings == [
        "worker: grace 600 s exceeds the shutdown deadline 25 s; a shutdown cuts it to 25 s"
    ]


def test_no_deadline_and_unknown_platform() -> None:
    warnings = grace_warnings(formation(spec("web", WEB), spec("worker", WORKER)), None, None)
    assert warnings == [
        "worker: grace 600 s is longer than Docker's default stop timeout (10 s), Render's "
        f"default (30 s, max 300 s) and Heroku's (30 s): {ADVICE}"
    ]


def test_types_with_the_same_problem_share_a_line() -> None:
    default = ProcessSettings()
    release = spec("release", default)
    warnings = grace_warnings(
        formation(spec("web", default), spec("beat", default), release=release), None, None
    )
    assert warnings == [
        "release, web, beat: grace 30 s is longer than Docker's default stop timeout (10 s): "
        + ADVICE
    ]


def test_detected_platform_comes_first() -> None:
    warnings = grace_warnings(formation(spec("worker", WORKER)), None, "heroku")
    assert warnings == [
        "worker: grace 600 s is longer than Heroku's (30 s), Docker's default stop timeout (10 s) "
        f"and Render's default (30 s, max 300 s): {ADVICE}"
    ]


def test_kubernetes_is_named_only_when_detected() -> None:
    warnings = grace_warnings(formation(spec("worker", WORKER)), None, "kubernetes")
    assert warnings[0].startswith(
        "worker: grace 600 s is longer than Kubernetes' default terminationGracePeriodSeconds "
        "(30 s), Docker's"
    )


def test_on_a_known_platform_only_its_deadline_decides() -> None:
    # 30 s passes Docker's 10 s but not Heroku's 30 s: on Heroku that is fine.
    assert grace_warnings(formation(spec("web", ProcessSettings())), None, "heroku") == []


def test_shutdown_deadline_not_below_the_platform() -> None:
    warnings = grace_warnings(formation(spec("web", WEB)), 30.0, "render")
    assert warnings == [
        "shutdown_timeout 30 s is not shorter than Render's default (30 s, max 300 s): the "
        "platform's SIGKILL may come before procrun has stopped everything; leave a margin of a "
        "few seconds"
    ]
    assert grace_warnings(formation(spec("web", WEB)), 25.0, "render") == []


def test_second_signal_margin_not_shorter_than_the_grace() -> None:
    settings = ProcessSettings(grace_seconds=8.0, second_signal=signal.SIGQUIT)
    warnings = grace_warnings(formation(spec("worker", settings)), None, "heroku")
    assert warnings == [
        "worker: second_signal_margin 10 s is more than half the grace 8 s, so SIGQUIT goes 4 s "
        "before the end, halfway"
    ]


def test_second_signal_margin_against_the_cut_grace() -> None:
    warnings = grace_warnings(formation(spec("worker", WORKER)), 9.5, None)
    assert warnings == [
        "worker: grace 600 s exceeds the shutdown deadline 9.5 s; a shutdown cuts it to 9.5 s",
        "worker: second_signal_margin 10 s is more than half the grace 9.5 s, so SIGQUIT goes "
        "4.75 s before the end, halfway",
    ]


def test_second_signal_same_as_stop_signal_is_not_a_second_signal() -> None:
    settings = ProcessSettings(grace_seconds=5.0, second_signal=signal.SIGTERM)
    assert grace_warnings(formation(spec("web", settings)), None, "heroku") == []


def test_nothing_to_say() -> None:
    assert grace_warnings(formation(spec("web", WEB)), None, None) == []
    assert grace_warnings(formation(), None, None) == []


def test_a_stated_platform_deadline_replaces_the_guessed_default() -> None:
    """Render's maxShutdownDelaySeconds (or docker stop -t) cannot be seen from inside: the user
    states it, and it alone decides."""
    worker = formation(spec("worker", ProcessSettings(grace_seconds=600.0)))
    assert grace_warnings(worker, 290.0, "render", 300.0) == [
        "worker: grace 600 s exceeds the shutdown deadline 290 s; a shutdown cuts it to 290 s"
    ]
    too_late = grace_warnings(worker, 300.0, "render", 300.0)
    assert too_late[0].startswith(
        "shutdown_timeout 300 s is not shorter than render's stop deadline"
    )
    short = formation(spec("worker", ProcessSettings(grace_seconds=20.0)))
    unset = grace_warnings(short, None, None, 10.0)
    assert unset == [
        "worker: grace 20 s is longer than the platform's stop deadline (10 s, platform_deadline): "
        "set shutdown_timeout (or --shutdown-timeout) to your platform's limit minus a margin"
    ]


def test_start_leaves_out_intended_cuts_but_keeps_mistakes() -> None:
    worker = formation(spec("worker", ProcessSettings(grace_seconds=600.0)))
    assert grace_warnings(worker, 290.0, "render", 300.0, include_cuts=False) == []
    mistake = grace_warnings(worker, 300.0, "render", 300.0, include_cuts=False)
    assert len(mistake) == 1
    assert mistake[0].startswith("shutdown_timeout 300 s is not shorter than")


def test_check_hints_at_platform_deadline_only_where_none_is_stated() -> None:
    assert "state platform_deadline" in describe_platform("docker")
    stated = describe_platform("docker", 300.0)
    assert "state platform_deadline" not in stated
    assert stated.endswith("platform_deadline 300 s (stated)")
    assert describe_platform(None, 30.0) == "not detected; platform_deadline 30 s (stated)"

"""Where procrun runs, how long that platform waits before its SIGKILL, and the warnings for
`procrun check` when a grace cannot be honoured. Pure logic: the environment comes in as a mapping,
and the one file it looks at (/.dockerenv) is a parameter.

A grace longer than the platform's deadline is worse than useless: the platform SIGKILLs
everything, procrun included, before procrun's own escalation (second signal, SIGKILL to the group)
ever runs. `shutdown_timeout` set a little below the platform's limit keeps procrun in control.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from procrun.lifecycle import effective_grace, second_signal_margin
from procrun.project.formation import Formation
from procrun.settings import ProcessSettings, ProcessSpec

DOCKERENV_PATH = Path("/.dockerenv")


@dataclass(frozen=True)
class Platform:
    name: str
    deadline_seconds: float
    """How long after its SIGTERM the platform sends SIGKILL, by default."""
    description: str
    """How a warning names the deadline; reads after "longer than"."""
    stated: bool = False
    """Given by the user (platform_deadline), so certain: no other platform is worth naming."""


def stated_deadline(seconds: float, platform: str | None) -> Platform:
    where = f"{platform}'s" if platform else "the platform's"
    return Platform(
        platform or "platform",
        seconds,
        f"{where} stop deadline ({seconds:g} s, platform_deadline)",
        stated=True,
    )


DOCKER = Platform("docker", 10.0, "Docker's default stop timeout (10 s)")
KUBERNETES = Platform(
    "kubernetes", 30.0, "Kubernetes' default terminationGracePeriodSeconds (30 s)"
)
HEROKU = Platform("heroku", 30.0, "Heroku's (30 s)")
# Render's maxShutdownDelaySeconds goes from 1 to 300 s; 30 s is its default.
RENDER = Platform("render", 30.0, "Render's default (30 s, max 300 s)")

PLATFORMS = {p.name: p for p in (DOCKER, RENDER, HEROKU, KUBERNETES)}
# Kubernetes' deadline is set per pod, so it is only worth naming when we know we run there.
_LISTED_WHEN_UNKNOWN = (DOCKER, RENDER, HEROKU)


def detect_platform(environ: Mapping[str, str], dockerenv: Path = DOCKERENV_PATH) -> str | None:
    """The platform procrun runs on, from variables each one sets, or None.

    Render sets RENDER=true, Heroku sets DYNO, Kubernetes sets KUBERNETES_SERVICE_HOST, and Docker
    creates /.dockerenv. The PaaS checks come first because they may run on the others.
    """
    if environ.get("RENDER") == "true":
        return RENDER.name
    if "DYNO" in environ:
        return HEROKU.name
    if "KUBERNETES_SERVICE_HOST" in environ:
        return KUBERNETES.name
    if dockerenv.exists():
        return DOCKER.name
    return None


_DETECTED_BY = {
    "render": "RENDER=true",
    "heroku": "DYNO is set",
    "kubernetes": "KUBERNETES_SERVICE_HOST is set",
    "docker": "/.dockerenv exists: a container, whose stop timeout procrun cannot see",
}
_UNSEEN_DEADLINE = {"docker": "state platform_deadline for start to check against it"}


def describe_platform(platform: str | None, stated_deadline: float | None = None) -> str:
    """The platform and why procrun thinks so, and the deadline the project states for it, for
    `procrun check`; where procrun cannot see the deadline and none is stated, a hint."""
    if platform is None:
        detected = "not detected"
    else:
        why = _DETECTED_BY.get(platform, "detected")
        if stated_deadline is None and platform in _UNSEEN_DEADLINE:
            why = f"{why}; {_UNSEEN_DEADLINE[platform]}"
        detected = f"{platform} ({why})"
    if stated_deadline is not None:
        detected += f"; platform_deadline {_seconds(stated_deadline)} (stated)"
    return detected


def grace_warnings(
    formation: Formation,
    shutdown_timeout: float | None,
    platform: str | None,
    platform_deadline: float | None = None,
    *,
    include_cuts: bool = True,
) -> list[str]:
    """One line per problem; process types with the same problem share a line. A stated
    `platform_deadline` replaces the platform's default (Render's maxShutdownDelaySeconds, a
    `docker stop -t`), which procrun cannot see. `include_cuts=False` leaves out graces cut to
    the shutdown deadline: intended when a deadline is set, worth showing in `procrun check` only.
    """
    if platform_deadline is not None:
        detected: Platform | None = stated_deadline(platform_deadline, platform)
    else:
        detected = PLATFORMS.get(platform) if platform else None
    warnings: list[str] = []
    if shutdown_timeout is not None and detected and shutdown_timeout >= detected.deadline_seconds:
        warnings.append(
            f"shutdown_timeout {_seconds(shutdown_timeout)} is not shorter than "
            f"{detected.description}: the platform's SIGKILL may come before procrun has "
            "stopped everything; leave a margin of a few seconds"
        )
    kinds_by_problem: dict[str, list[str]] = {}
    for spec in _one_per_type(formation):
        for problem in _problems(spec.settings, shutdown_timeout, detected, include_cuts):
            kinds_by_problem.setdefault(problem, []).append(spec.kind)
    warnings += [f"{', '.join(kinds)}: {problem}" for problem, kinds in kinds_by_problem.items()]
    return warnings


def _problems(
    settings: ProcessSettings,
    shutdown_timeout: float | None,
    detected: Platform | None,
    include_cuts: bool,
) -> list[str]:
    problems: list[str] = []
    grace = effective_grace(settings, shutdown_timeout)
    if shutdown_timeout is not None:
        if include_cuts and settings.grace_seconds > shutdown_timeout:
            problems.append(
                f"grace {_seconds(settings.grace_seconds)} exceeds the shutdown deadline "
                f"{_seconds(shutdown_timeout)}; a shutdown cuts it to {_seconds(grace)}"
            )
    elif exceeded := _exceeded(grace, detected):
        problems.append(
            f"grace {_seconds(grace)} is longer than {_join(exceeded)}: set shutdown_timeout "
            "(or --shutdown-timeout) to your platform's limit minus a margin"
        )
    second, margin = settings.second_signal, settings.second_signal_margin_seconds
    used = second_signal_margin(settings, grace)
    if include_cuts and second is not None and second != settings.stop_signal and used < margin:
        problems.append(
            f"second_signal_margin {_seconds(margin)} is more than half the grace "
            f"{_seconds(grace)}, so {second.name} goes {_seconds(used)} before the end, halfway"
        )
    return problems


def _one_per_type(formation: Formation) -> list[ProcessSpec]:
    release = [formation.release] if formation.release else []
    first_of_kind: dict[str, ProcessSpec] = {}
    for spec in (*release, *formation.processes):
        first_of_kind.setdefault(spec.kind, spec)
    return list(first_of_kind.values())


def _exceeded(grace: float, detected: Platform | None) -> list[Platform]:
    """The deadlines `grace` passes. On a known platform only its own deadline decides whether
    to warn, but the others are listed after it, since detection is a guess."""
    if detected is None:
        return [p for p in _LISTED_WHEN_UNKNOWN if grace > p.deadline_seconds]
    if grace <= detected.deadline_seconds:
        return []
    if detected.stated:
        return [detected]
    others = [p for p in _LISTED_WHEN_UNKNOWN if p is not detected and grace > p.deadline_seconds]
    return [detected, *others]


def _join(platforms: list[Platform]) -> str:
    descriptions = [p.description for p in platforms]
    if len(descriptions) == 1:
        return descriptions[0]
    return f"{', '.join(descriptions[:-1])} and {descriptions[-1]}"


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + " s"

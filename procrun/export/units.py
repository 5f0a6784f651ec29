"""What each exported unit needs to know about its process type, read from the Project that
`start` loads: its count, its deadline and stop sequence, its PORT, its probes, its procrun.toml
`env` (never a value from .env), its dependencies and the command it runs.

The deadline. A unit runs `procrun start TYPE`, so the platform's SIGTERM reaches procrun, which
runs the type's own stop sequence (stop signal to the leader, the second signal, SIGKILL to the
group) within that type's grace; the platform's SIGKILL must come after all of that. Where the
export sets the platform's deadline (Kubernetes, Compose, systemd), the unit's deadline is the
type's full grace, cut only by a --shutdown-timeout given to `export`: procrun.toml's
shutdown_timeout is the answer to a platform whose deadline is fixed (Render's 300 s), which
these are not. The unit tells the procrun inside it the same numbers (PROCRUN_SHUTDOWN_TIMEOUT,
PROCRUN_PLATFORM_DEADLINE), which win over procrun.toml, so the two sides cannot drift apart
when the image changes and the units are not regenerated.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from procrun.errors import UsageError
from procrun.lifecycle import effective_grace, stop_plan
from procrun.project.config import CONFIG_FILE_NAME, PYPROJECT_FILE_NAME
from procrun.project.formation import PORT_STEP_PER_TYPE
from procrun.project.loader import Project
from procrun.project.procfile import RELEASE_PROCESS
from procrun.settings import Condition, LivenessProbe, Probe, ProcessSettings

EXPORT_MARGIN_SECONDS = 10.0
"""From procrun's own SIGKILL to the group (the unit's deadline) to the platform's SIGKILL. After
its SIGKILL procrun still reaps, relays up to 1 s of the last output and waits up to 5 s for a
slow log reader before it exits (README, "Output"); 10 s covers that with room to spare, as
procrun.toml's 290 s under Render's 300 s does."""

MAX_NAME_CHARS = 40
"""An app name's length, so that `<app>-<type>` stays within a DNS label's 63."""
_NOT_IN_NAME = re.compile(r"[^a-z0-9-]+")
PORT_VARIABLE = re.compile(r"\$(?:PORT\b|\{PORT\})")


@dataclass(frozen=True)
class ExportOptions:
    """What `procrun export` was asked for beyond the project."""

    image: str | None = None
    app: str | None = None
    user: str | None = None
    procrun: str | None = None
    """systemd: the procrun that ExecStart runs."""
    blueprint: Path | None = None
    """render: the Blueprint the other services and each service's settings come from."""
    output: Path | None = None
    base_port: int = 5000
    env_files: tuple[Path, ...] = ()
    """-e files: the .env files procrun reads instead of the project's .env."""


@dataclass(frozen=True)
class Unit:
    """One process type, exported as one unit run `count` times."""

    kind: str
    command: str
    """The Procfile command, for comments."""
    count: int
    settings: ProcessSettings
    port: int | None
    """The PORT it listens on, for a type that has one (web)."""
    argv: tuple[str, ...]
    """What the unit runs: `procrun start TYPE`."""

    @property
    def release(self) -> bool:
        return self.kind == RELEASE_PROCESS

    @property
    def oneshot(self) -> bool:
        return self.release or self.settings.oneshot

    @property
    def ready(self) -> Probe | None:
        return self.settings.ready

    @property
    def alive(self) -> LivenessProbe | None:
        return self.settings.alive

    @property
    def depends_on(self) -> Mapping[str, Condition]:
        return self.settings.depends_on

    @property
    def env(self) -> Mapping[str, str]:
        """procrun.toml's `env` for this type: the only values an export ever writes."""
        return self.settings.env

    def deadline(self, cap: float | None) -> float:
        """When procrun's SIGKILL to the group comes, from the SIGTERM, under the deadline `cap`."""
        return effective_grace(self.settings, cap)

    def platform_deadline(self, cap: float | None) -> int:
        """When the platform's SIGKILL should come: after procrun's, with a margin."""
        return math.ceil(self.deadline(cap) + EXPORT_MARGIN_SECONDS)

    def stop_sequence(self, cap: float | None) -> str:
        """`SIGTERM, SIGQUIT at 650 s, SIGKILL to the group at 660 s`."""
        steps = stop_plan(self.settings, self.deadline(cap))
        said = [steps[0].signal.name]
        said += [f"{step.signal.name} at {step.at_seconds:g} s" for step in steps[1:-1]]
        said.append(f"{steps[-1].signal.name} to the group at {steps[-1].at_seconds:g} s")
        return ", ".join(said)

    def describe(self, cap: float | None, setting: str) -> str:
        """The comment on what the unit's deadline numbers are made of, `setting` being the
        platform's SIGKILL deadline (terminationGracePeriodSeconds...)."""
        grace = self.settings.grace_seconds
        deadline = self.deadline(cap)
        cut = f", cut to {deadline:g} s" if deadline < grace else ""
        return (
            f"{self.kind}: `{' '.join(self.argv)}`; grace {grace:g} s{cut}: "
            f"{self.stop_sequence(cap)}; {setting} {self.platform_deadline(cap)} s, "
            f"{EXPORT_MARGIN_SECONDS:g} s later for procrun to reap and exit."
        )

    def deadline_env(self, cap: float | None) -> dict[str, str]:
        """The deadlines the procrun inside the unit is told, winning over procrun.toml."""
        return {
            "PROCRUN_SHUTDOWN_TIMEOUT": duration(self.deadline(cap)),
            "PROCRUN_PLATFORM_DEADLINE": duration(self.platform_deadline(cap)),
        }


@dataclass(frozen=True)
class Export:
    """The project as units, with what every format shares."""

    app: str
    root: Path
    units: tuple[Unit, ...]
    options: ExportOptions
    project: Project
    cap: float | None
    """--shutdown-timeout given to export, the one deadline that cuts every unit's."""
    procrun_env: Mapping[str, str]
    """PROCRUN_PROCFILE and PROCRUN_CONFIG, relative to the project, when not the defaults."""

    def unit(self, kind: str) -> Unit | None:
        return next((unit for unit in self.units if unit.kind == kind), None)

    @property
    def sources(self) -> list[str]:
        """The files the units come from, relative to the project, for the header."""
        paths = [*self.project.procfile.paths, *self.project.config.sources]
        return [relative_to(path, self.root) for path in paths]

    def ignored_deadline_note(self) -> str | None:
        """For the formats that set their own deadline: why procrun.toml's is not used."""
        configured = self.project.config.shutdown_timeout_seconds
        if self.cap is not None or configured is None:
            return None
        cut = [u.kind for u in self.units if u.settings.grace_seconds > configured]
        if not cut:
            return None
        return (
            f"shutdown_timeout {configured:g} s (procrun.toml) is not used: each unit's "
            f"deadline is its own type's grace ({', '.join(cut)}: longer), and the platform's "
            f"SIGKILL comes {EXPORT_MARGIN_SECONDS:g} s after it; give --shutdown-timeout to cap "
            "them"
        )


def build_export(project: Project, options: ExportOptions, cap: float | None) -> Export:
    formation = project.formation
    specs = [*([formation.release] if formation.release else []), *formation.processes]
    counts: dict[str, int] = {}
    for spec in specs:
        counts[spec.kind] = counts.get(spec.kind, 0) + 1
    units = []
    for kind, count in counts.items():
        index, entry = next(
            (i, e) for i, e in enumerate(project.procfile.entries) if e.name == kind
        )
        spec = next(spec for spec in specs if spec.kind == kind)
        argv: tuple[str, ...] = ("procrun", "start", kind)
        if spec.settings.count != 1 and kind != RELEASE_PROCESS:
            argv = ("procrun", "start", "-c", f"{kind}=1", kind)  # one instance per unit
        port = options.base_port + PORT_STEP_PER_TYPE * index
        listens = has_port(kind, entry.command, spec.settings)
        units.append(
            Unit(kind, entry.command, count, spec.settings, port if listens else None, argv)
        )
    return Export(
        app=app_name(project.root, options.app),
        root=project.root,
        units=tuple(units),
        options=options,
        project=project,
        cap=cap,
        procrun_env=_procrun_env(project),
    )


def has_port(kind: str, command: str, settings: ProcessSettings) -> bool:
    """Whether the type listens on PORT: `web` (the one type a Heroku router sends traffic to),
    or a command or probe that uses $PORT."""
    probes = [settings.ready, settings.alive.probe if settings.alive else None]
    targets = [command, *(probe.target for probe in probes if probe is not None)]
    return kind == "web" or any(PORT_VARIABLE.search(text) for text in targets)


def duration(seconds: float) -> str:
    """`660s`: how a deadline is written for procrun and for Compose."""
    return f"{seconds:g}s"


def app_name(root: Path, given: str | None) -> str:
    """--app, else the project's name in pyproject.toml, else its directory's, as a DNS label."""
    name = given or _pyproject_name(root) or root.name
    label = _NOT_IN_NAME.sub("-", name.lower()).strip("-")[:MAX_NAME_CHARS].strip("-")
    if not label:
        raise UsageError(f'--app: "{name}" has no letter or digit to make a name of: give --app')
    return label


def dns_label(kind: str) -> str:
    """A process type as part of a Kubernetes or systemd name (`my_worker` -> `my-worker`)."""
    return _NOT_IN_NAME.sub("-", kind.lower()).strip("-") or "process"


def _pyproject_name(root: Path) -> str | None:
    try:
        with (root / PYPROJECT_FILE_NAME).open("rb") as file:
            project = tomllib.load(file).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    name = project.get("name") if isinstance(project, dict) else None
    return name if isinstance(name, str) else None


def relative_to(path: Path, root: Path) -> str:
    """`path` relative to the project, or absolute when it is outside it."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(root))
    except ValueError:
        return str(resolved)


def _procrun_env(project: Project) -> dict[str, str]:
    """The files a unit's procrun must read when they are not the ones it finds by itself."""
    env: dict[str, str] = {}
    procfiles = [relative_to(path, project.root) for path in project.procfile.paths]
    if procfiles != ["Procfile"]:
        env["PROCRUN_PROCFILE"] = os.pathsep.join(procfiles)
    configs = [relative_to(path, project.root) for path in project.config.sources]
    if configs and configs != [CONFIG_FILE_NAME] and configs != [PYPROJECT_FILE_NAME]:
        env["PROCRUN_CONFIG"] = os.pathsep.join(configs)
    return env

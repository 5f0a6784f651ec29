"""A project on disk (Procfile, procrun.toml, .env) turned into the formation procrun will run."""

from __future__ import annotations

import functools
import os
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from procrun.errors import UsageError
from procrun.lifecycle import effective_grace, second_signal_margin
from procrun.project.celery_worker import celery_node_name_warning
from procrun.project.config import Config, load_config, ready_is_configured, unknown_process_names
from procrun.project.dependencies import waves_of
from procrun.project.environ import load_env_files, merge_environment, own_virtualenv_bin
from procrun.project.formation import Formation, build_formation
from procrun.project.machinelimits import describe_limits
from procrun.project.platforms import DOCKER, describe_platform, detect_platform, grace_warnings
from procrun.project.procfile import DEFAULT_PROCFILE, RELEASE_PROCESS, Procfile, load_procfiles
from procrun.project.programs import busy_port_warnings, check_programs
from procrun.project.shell import last_step, program_of
from procrun.project.stackdefaults import stack_default
from procrun.project.values import parse_duration
from procrun.quoting import did_you_mean, one_line
from procrun.settings import POLLED_PROBES, GiveUpPolicy, Probe, ProbeKind, ProcessSpec


@dataclass(frozen=True)
class ProjectOptions:
    """What the command line says about the project: which files, which processes, how many."""

    procfiles: tuple[Path, ...] = (DEFAULT_PROCFILE,)
    """The Procfile, then the overlays merged on top of it, in order."""
    root: Path | None = None
    env_files: tuple[Path, ...] = ()
    configs: tuple[Path, ...] = ()
    """Settings files merged in order; none: procrun.toml or pyproject.toml in the root."""
    counts: Mapping[str, int] = field(default_factory=dict)
    only: tuple[str, ...] = ()
    shutdown_timeout: str | None = None
    platform_deadline: str | None = None
    base_port: int = 5000
    run_release: bool = True
    no_restart: bool = False
    check_programs: bool = True
    """Fail when a command's program is missing (`procrun run` leaves that to the exec)."""


@dataclass(frozen=True)
class Project:
    root: Path  # the project directory, absolute: .env, procrun.toml, the control socket's name
    procfile: Procfile
    config: Config
    formation: Formation
    shutdown_timeout: float | None
    platform: str | None
    warnings: tuple[str, ...]
    """Everything `procrun check` reports."""
    venv_bin: Path | None
    """The virtualenv bin put first on the children's PATH, if any."""
    recipe: Callable[..., Formation]
    """build_formation with this project's files, environment and options, for `specs_for`."""
    start_warnings: tuple[str, ...]
    """What `procrun start` logs: likely mistakes only, and deadline advice only where the
    platform is known (not on a laptop)."""
    notes: tuple[str, ...] = ()
    """What `procrun check` adds that is no mistake: why a program got no readiness default."""
    platform_deadline: float | None = None
    """The platform's stop deadline as stated (procrun.toml or --platform-deadline), if it is."""

    @property
    def on_give_up(self) -> GiveUpPolicy:
        return self.config.on_give_up

    def specs_for(self, kind: str, count: int | None = None) -> tuple[ProcessSpec, ...]:
        """The instances of Procfile type `kind`, built as `start` builds them: as many as -c or
        procrun.toml say (a type that `procrun start NAMES` left out, started later), or `count`
        of them (`procrun scale`: PS and PORT as `-c kind=count` would give). UsageError for an
        unknown type."""
        if kind == RELEASE_PROCESS:
            raise UsageError(f'"{RELEASE_PROCESS}" runs only when procrun starts')
        if count is None:
            return self.recipe(only=(kind,), run_release=False).processes
        # The recipe refuses to build nothing: for 0, one is built to check the type, and dropped.
        built = self.recipe(only=(kind,), run_release=False, counts={kind: max(count, 1)})
        return built.processes[:count]

    def describe(self) -> list[str]:
        """The resolved formation and settings, for `procrun check`."""
        deadline = "none" if self.shutdown_timeout is None else f"{self.shutdown_timeout:g} s"
        sources = ", ".join(map(str, self.config.sources)) or "defaults (no procrun.toml)"
        lines = [
            f"Procfile: {', '.join(map(str, self.procfile.paths))}",
            *(f"removed: {r.name} ({r.source}, was {r.removed})" for r in self.procfile.removals),
            f"settings: {sources}",
            f"shutdown deadline: {deadline}; on give-up: {self.on_give_up}; "
            f"platform: {describe_platform(self.platform, self.platform_deadline)}",
        ]
        if self.venv_bin is not None:
            lines.append(f"PATH: {self.venv_bin} first (procrun runs from that virtualenv)")
        release = [self.formation.release] if self.formation.release else []
        for spec in (*release, *self.formation.processes):
            lines.append(self._describe_spec(spec))
            lines += _describe_health(spec)
        if any(spec.settings.depends_on for spec in (*release, *self.formation.processes)):
            waves = [", ".join(wave) for wave in waves_of(self.formation.processes)]
            lines.append(f"start order: {'; then '.join([*(s.kind for s in release), *waves])}")
        lines += describe_limits(self.formation.release, self.formation.processes)
        lines += [f"warning: {warning}" for warning in self.warnings]
        lines += [f"note: {note}" for note in self.notes]
        return lines

    def _describe_spec(self, spec: ProcessSpec) -> str:
        s = spec.settings
        stop = f"{s.stop_signal.name}"
        if s.second_signal is not None and s.second_signal != s.stop_signal:
            margin = second_signal_margin(s, s.grace_seconds)
            stop += f", {s.second_signal.name} {margin:g} s before the end"
        grace = f"grace {s.grace_seconds:g} s ({stop}, then SIGKILL to the group)"
        capped = effective_grace(s, self.shutdown_timeout)
        if capped < s.grace_seconds:
            grace += f", cut to {capped:g} s in a shutdown"
            if s.second_signal is not None and s.second_signal != s.stop_signal:
                grace += f" ({s.second_signal.name} {second_signal_margin(s, capped):g} s before)"
        kind = "one-shot" if s.oneshot else f"restart {s.restart}"
        entry = self.procfile.get(spec.kind)
        replaced = f", replaces {entry.replaces}" if entry and entry.replaces else ""
        return (
            f"{spec.name}: {spec.command} ({spec.source}{replaced})\n"
            f"    {grace}; {kind}, "
            f"max {s.max_restarts} restarts in {s.restart_window_seconds:g} s; "
            f"PORT={spec.env.get('PORT', '-')}; cwd {spec.cwd}"
        )


def _describe_health(spec: ProcessSpec) -> list[str]:
    """The lines under a process: who gets the stop signal, ready (always), alive and depends
    on (when set)."""
    s = spec.settings
    lines = [f"    stop signal: {s.stop_signal.name} to {stop_receiver(spec.command)}"]
    if s.ready is None:
        lines += [f"    ready: none (min_uptime {s.min_uptime_seconds:g} s)"]
    else:
        ready = (
            f"{_describe_probe(s.ready)} ({s.ready.origin}), timeout {s.ready_timeout_seconds:g} s"
        )
        if s.ready.kind in POLLED_PROBES:
            ready += (
                f"; tries {s.ready.timeout_seconds:g} s each, "
                f"at most {s.ready_interval_seconds:g} s apart"
            )
        lines += [f"    ready: {ready}"]
    if s.alive is not None:
        probe = s.alive.probe
        if probe.kind is ProbeKind.WATCHDOG:
            alive = f"watchdog, WATCHDOG=1 at least every {probe.timeout_seconds:g} s"
        else:
            failures = f"{s.alive.failures} failure{'s' if s.alive.failures > 1 else ''}"
            alive = (
                f"{_describe_probe(probe)} every {s.alive.every_seconds:g} s, "
                f"timeout {probe.timeout_seconds:g} s, {failures}"
            )
        lines.append(f"    alive: {alive} ({probe.origin})")
    if s.watch:
        ignoring = f", not {', '.join(s.watch_ignore)}" if s.watch_ignore else ""
        lines.append(f"    watch (with --watch): {', '.join(s.watch)}{ignoring}")
    if s.depends_on:
        wanted = ", ".join(f"{name} ({condition})" for name, condition in s.depends_on.items())
        with_them = "; restarted when a dependency restarts" if s.restart_with else ""
        lines.append(f"    depends on: {wanted}{with_them}")
    return lines


def _describe_probe(probe: Probe) -> str:
    if probe.kind in (ProbeKind.LOG, ProbeKind.EXEC):
        return f'{probe.kind} "{one_line(probe.target)}"'
    status = f" status {probe.status}" if probe.status is not None else ""
    return f"{probe.describe()}{status}"


def load_project(options: ProjectOptions, environ: Mapping[str, str]) -> Project:
    if options.root is not None and not options.root.is_dir():
        raise UsageError(f"-d/--root: no such directory: {options.root.absolute()}")
    procfile = load_procfiles(options.procfiles)
    root = (options.root or procfile.path.parent).resolve()
    config = load_config(root, *options.configs)
    dotenv_paths = options.env_files or (root / ".env",)
    dotenv = load_env_files(dotenv_paths, required=bool(options.env_files))
    merged = merge_environment(environ, dotenv)
    venv_bin = own_virtualenv_bin(merged.get("PATH"), sys.prefix, sys.base_prefix)
    if venv_bin is not None:
        merged["PATH"] = os.pathsep.join(filter(None, (str(venv_bin), merged.get("PATH"))))
    # The same rules for a type started later (`procrun start worker` after `start web`).
    recipe = functools.partial(
        build_formation,
        procfile,
        config,
        merged,
        real_keys=frozenset(environ),
        directory=root,
        counts=options.counts,
        base_port=options.base_port,
        no_restart=options.no_restart,
    )
    formation = recipe(only=options.only, run_release=options.run_release)
    if options.shutdown_timeout is not None:
        timeout: float | None = parse_duration(
            options.shutdown_timeout, "--shutdown-timeout / PROCRUN_SHUTDOWN_TIMEOUT"
        )
    else:
        timeout = config.shutdown_timeout_seconds
    warnings = [
        f'{config.tables[name]}: settings for "{name}", which the Procfile does not define'
        f"{did_you_mean(name, procfile.names)}"
        for name in unknown_process_names(config, procfile)
    ]
    if config.shadowed is not None:
        warnings.append(
            f"{config.shadowed}: [tool.procrun] is ignored because {config.sources[0]} exists"
        )
    if options.platform_deadline is not None:
        stated: float | None = parse_duration(
            options.platform_deadline, "--platform-deadline / PROCRUN_PLATFORM_DEADLINE"
        )
    else:
        stated = config.platform_deadline_seconds
    platform = detect_platform(environ)
    deadline_warnings = grace_warnings(formation, timeout, platform, stated)
    counts = Counter(spec.kind for spec in formation.processes)
    node_warnings = [
        warning
        for entry in procfile.entries
        if (warning := celery_node_name_warning(entry.name, entry.command, counts[entry.name]))
    ]
    kinds = {
        spec.kind
        for spec in (*([formation.release] if formation.release else []), *formation.processes)
    }
    notes = [
        note
        for entry in procfile.entries
        if entry.name in kinds and not ready_is_configured(entry.name, config)
        if (note := stack_default(entry.name, entry.command)[1])
    ]
    port_warnings = busy_port_warnings(formation.processes)
    warnings += [
        f"{entry.source}: {entry.name}: the shell leads this command throughout (a pipeline, "
        "`&`, `||` or a control structure): the stop signal goes to its whole group at once; make "
        "the long-running program a simple command, or the last step of an `&&` list"
        for entry in procfile.entries
        if last_step(entry.command) is None
    ]
    warnings += node_warnings + port_warnings
    start_warnings: list[str] = node_warnings + port_warnings
    # A /.dockerenv says "a container", not whose stop timeout applies (docker stop -t, a
    # compose stop_grace_period, another runtime): start warns only where the deadline is known.
    if (platform is not None and platform != DOCKER.name) or stated is not None:
        start_warnings += grace_warnings(formation, timeout, platform, stated, include_cuts=False)
    # Last: every mistake in the files and options is reported before a missing program.
    if options.check_programs:
        check_programs([*([formation.release] if formation.release else []), *formation.processes])
    return Project(
        root,
        procfile,
        config,
        formation,
        timeout,
        platform,
        tuple(warnings + deadline_warnings),
        venv_bin,
        recipe,
        tuple(start_warnings),
        tuple(notes),
        stated,
    )


def stop_receiver(command: str) -> str:
    """Who gets the stop signal, for `check`: the program, or the group while a shell leads."""
    step = last_step(command)
    if step is None:
        return "the whole group (the shell leads throughout)"
    program = program_of(step) or "the program"
    if step == command:
        return f"{program} (it leads the group: exec)"
    return f"the running step while earlier ones run, then {program} (the last step, exec'd)"

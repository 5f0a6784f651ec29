"""Procfile entries + settings + counts + selection -> the instances to run, as ProcessSpecs.

Environment of each instance, strongest first: the real environment, the process's `env` table in
procrun.toml, the .env files. On top: PS, always (the instance name, as foreman sets it);
PYTHONUNBUFFERED=1 unless set (so Python children's logs reach the pipe promptly); PORT unless set,
numbered the foreman way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from procrun.errors import UsageError
from procrun.project.config import Config, settings_for
from procrun.project.dependencies import check_dependencies
from procrun.project.procfile import RELEASE_PROCESS, Procfile, ProcfileEntry
from procrun.project.shell import shell_argv, shell_leads
from procrun.quoting import did_you_mean, excerpt
from procrun.settings import ProcessSettings, ProcessSpec, RestartPolicy

MAX_INSTANCES_PER_TYPE = 1000
"""A bound that no real formation reaches, so a typo (`-c web=1000000000`) fails fast."""

PORT_STEP_PER_TYPE = 100
MANAGER_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
MAX_PORT = 65535


@dataclass(frozen=True)
class Formation:
    release: ProcessSpec | None
    processes: tuple[ProcessSpec, ...]


def build_formation(
    procfile: Procfile,
    config: Config,
    environ: Mapping[str, str],
    *,
    real_keys: Set[str],
    directory: Path,
    counts: Mapping[str, int] | None = None,
    only: Sequence[str] = (),
    base_port: int = 5000,
    run_release: bool = True,
    no_restart: bool = False,
) -> Formation:
    """The instances to run, in Procfile order.

    `environ` is the real environment merged with the .env files; `real_keys` says which of its
    keys came from the real environment, so that procrun.toml `env` can override .env but not the
    platform. `counts` (from -c) beats procrun.toml `count`; 0 means none. A non-empty `only` runs
    just those types; `no_restart` makes every restart policy `never`. `release` is not a
    process: it becomes Formation.release, run once, when `run_release` is set and `only` is
    empty or names it.
    """
    counts = counts or {}
    _check_known(procfile, counts)
    _check_known(procfile, only)
    for name, count in counts.items():
        if count < 0:
            raise UsageError(f'count for "{name}" must be 0 or more, got {count}')

    if counts.get(RELEASE_PROCESS, 0) > 1:
        raise UsageError(f'"{RELEASE_PROCESS}" runs once: its count can be 0 (skip it) or 1')
    # Here rather than in load_config: only now is the Procfile known.
    check_dependencies(procfile, config)

    builder = _InstanceBuilder(environ, real_keys, directory, base_port)
    release: ProcessSpec | None = None
    processes: list[ProcessSpec] = []
    for type_index, entry in enumerate(procfile.entries):
        if only and entry.name not in only:
            continue
        settings = settings_for(entry.name, entry.command, config)
        if no_restart:  # development: a crash stays on screen instead of restarting
            settings = replace(settings, restart=RestartPolicy.NEVER)
        count = counts.get(entry.name, settings.count)
        if count > MAX_INSTANCES_PER_TYPE:
            raise UsageError(
                f'count for "{entry.name}" must be at most {MAX_INSTANCES_PER_TYPE}, got {count}'
            )
        if entry.name == RELEASE_PROCESS:
            if run_release and count > 0:
                once = replace(settings, oneshot=True, restart=RestartPolicy.NEVER, count=1)
                release = builder.instance(entry, once, 1, type_index)
            continue
        processes += (builder.instance(entry, settings, i, type_index) for i in range(1, count + 1))
    if release is None and not processes:
        raise UsageError("nothing to run: every selected process type has a count of 0")
    return Formation(release=release, processes=tuple(processes))


def _check_known(procfile: Procfile, names: Sequence[str] | Mapping[str, int]) -> None:
    for name in names:
        if procfile.get(name) is None:
            raise UsageError(
                f'unknown process "{excerpt(name)}"{did_you_mean(name, procfile.names)}; '
                f"the Procfile defines: {', '.join(procfile.names)}"
            )


@dataclass(frozen=True)
class _InstanceBuilder:
    environ: Mapping[str, str]
    real_keys: Set[str]
    directory: Path
    base_port: int

    def instance(
        self, entry: ProcfileEntry, settings: ProcessSettings, index: int, type_index: int
    ) -> ProcessSpec:
        name = f"{entry.name}.{index}"
        env = dict(self.environ)
        env.update((k, v) for k, v in settings.env.items() if k not in self.real_keys)
        for key in MANAGER_ENV:  # addressed to procrun by its own manager (systemd)
            env.pop(key, None)
        env["PS"] = name
        env.setdefault("PYTHONUNBUFFERED", "1")
        if "PORT" not in env:
            # foreman's scheme (web.1 5000, web.2 5001, worker.1 5100), stable whatever is selected.
            port = self.base_port + PORT_STEP_PER_TYPE * type_index + (index - 1)
            if not 0 < port <= MAX_PORT:
                raise UsageError(
                    f"{name} would get PORT {port}, outside 1-{MAX_PORT}: change the base port"
                )
            env["PORT"] = str(port)
        return ProcessSpec(
            name=name,
            kind=entry.name,
            index=index,
            command=entry.command,
            argv=shell_argv(entry.command),
            shell_leads=shell_leads(entry.command),
            env=MappingProxyType(env),
            cwd=settings.cwd or self.directory,
            settings=settings,
            source=entry.source,
        )

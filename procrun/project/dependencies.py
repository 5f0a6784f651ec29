"""`depends_on` checked against the Procfile, and the order the process types start in.

procrun.toml cannot know the Procfile (one file may serve Procfile and Procfile.dev), so loading
records what each table asks and where (healthkeys.DeclaredDependencies); check_dependencies runs
when the formation is built, for `procrun start` and `procrun check` alike, before anything
starts. A dependency on a type this formation leaves out (`procrun start web` in a split
deployment, one type per container) is kept in the settings: the supervisor ignores it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from procrun.errors import ConfigError
from procrun.project.config import Config, is_oneshot
from procrun.project.healthkeys import DeclaredDependencies
from procrun.project.procfile import RELEASE_PROCESS, Procfile
from procrun.quoting import did_you_mean, excerpt
from procrun.settings import Condition, ProcessSpec


def declared_dependencies(config: Config) -> dict[str, DeclaredDependencies]:
    """Each [processes.<name>] table's depends_on, as written."""
    return {
        name: declared
        for name, overrides in config.processes.items()
        if isinstance(declared := overrides.get("depends_on"), DeclaredDependencies)
    }


def check_dependencies(procfile: Procfile, config: Config) -> None:
    """Every depends_on of a Procfile entry names another entry, waits for what that entry can
    reach, and no chain of them comes back to where it started; else a ConfigError naming the
    procrun.toml line. Tables of names the Procfile lacks only get a warning (loader.py)."""
    every = declared_dependencies(config)
    declared = {name: every[name] for name in procfile.names if name in every}
    for name, deps in declared.items():
        if name == RELEASE_PROCESS and deps.wanted:
            raise ConfigError(
                f"{deps.what}: {RELEASE_PROCESS} runs before every other process starts, so it "
                "cannot wait for one"
            )
        for wanted, condition in deps.wanted.items():
            if wanted == name:
                raise ConfigError(f'{deps.what}: "{excerpt(name)}" depends on itself')
            if procfile.get(wanted) is None:
                raise ConfigError(
                    f'{deps.what}: no Procfile entry "{excerpt(wanted)}"'
                    f"{did_you_mean(wanted, procfile.names)}"
                )
            if condition is Condition.COMPLETED and not is_oneshot(wanted, config):
                raise ConfigError(
                    f"{deps.what}: {wanted} is not a one-shot: it never completes; "
                    "use ready or started"
                )
    edges = {
        name: list(declared[name].wanted) if name in declared else [] for name in procfile.names
    }
    if cycle := find_cycle(edges):
        raise ConfigError(f"{declared[cycle[0]].what}: cycle {' -> '.join(cycle)}")


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle as a path that ends where it starts (`worker -> beat -> worker`), beginning at
    its node that comes first in `edges` order; None if there is none."""
    order = {name: i for i, name in enumerate(edges)}
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            loop = path[path.index(node) :]
            first = min(range(len(loop)), key=lambda i: order[loop[i]])
            loop = loop[first:] + loop[:first]
            return [*loop, loop[0]]
        if node in done or node not in edges:
            return None
        path.append(node)
        for target in edges[node]:
            if cycle := visit(target):
                return cycle
        path.pop()
        done.add(node)
        return None

    return next((cycle for node in edges if (cycle := visit(node))), None)


def start_waves(dependencies: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The process types in the order they can start: each wave waits only for earlier waves.

    `dependencies` maps each type of the formation, in Procfile order, to the types it depends
    on; a type outside the mapping (left out of this formation, or the release, which runs
    before them all) is no reason to wait. Procfile order is kept within a wave. ValueError on a
    cycle, which check_dependencies has already refused.
    """
    waiting = {
        kind: {dep for dep in deps if dep in dependencies and dep != kind}
        for kind, deps in dependencies.items()
    }
    started: set[str] = set()
    waves: list[list[str]] = []
    while waiting:
        wave = [kind for kind, deps in waiting.items() if deps <= started]
        if not wave:
            raise ValueError(f"a dependency cycle among {', '.join(waiting)}")
        waves.append(wave)
        started.update(wave)
        for kind in wave:
            del waiting[kind]
    return waves


def waves_of(specs: Iterable[ProcessSpec]) -> list[list[str]]:
    """start_waves for the instances of a formation (Formation.processes)."""
    dependencies: dict[str, Iterable[str]] = {}
    for spec in specs:
        dependencies.setdefault(spec.kind, spec.settings.depends_on.keys())
    return start_waves(dependencies)

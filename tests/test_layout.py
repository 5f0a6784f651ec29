"""The package tells its architecture: layers that only import downwards, no import cycle, modules
of one concern, and a module map that names every module.

Imports are read from the source (ast), wherever they are: at the top, inside a function, or under
`if TYPE_CHECKING:`, since a type-only import is still a dependency of the design.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import procrun

PACKAGE = Path(procrun.__file__).parent
MAX_MODULE_LINES = 350

# The core's vocabulary, shared by every layer: errors, settings, time, states and events.
BASE = frozenset(
    {
        "procrun",
        "procrun.errors",
        "procrun.quoting",
        "procrun.settings",
        "procrun.clock",
        "procrun.lifecycle",
        "procrun.outcomes",
        "procrun.events",
    }
)
# Which layers each layer may import. Data flows project -> core <-> process -> output; control
# and cli sit on top. `project` and `output` are siblings and know nothing of each other, and the
# core knows nothing of the project beyond the ProcessSpecs it is given.
ALLOWED = {
    "base": {"base"},
    "project": {"base", "project"},
    "output": {"base", "output"},
    "core": {"base", "output", "core"},
    "health": {"base", "output", "core", "health"},
    "watch": {"base", "core", "watch"},
    "control": {"base", "project", "output", "core", "control"},
    # The formation as another scheduler's units: what the project says, nothing of the core.
    "export": {"base", "project", "export"},
    # Another supervisor's configuration read and written as a Procfile: project's parsers only.
    "importing": {"base", "project", "importing"},
    "cli": {"base", "project", "output", "core", "health", "watch", "control", "export", "cli"}
    | {"importing"},
    "main": {"cli"},
}


def layer_of(module: str) -> str:
    if module in BASE:
        return "base"
    if module == "procrun.__main__":
        return "main"
    parts = module.split(".")
    if len(parts) > 2 or (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return "core"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(relative.parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports_of(module: str, path: Path) -> Iterator[str]:
    """The procrun modules `module` imports; `from procrun import x` names procrun.x if x is a
    module, else the package itself."""
    known = modules()
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        yield from (t for t in targets if t == "procrun" or t.startswith("procrun."))


def graph() -> dict[str, set[str]]:
    return {name: set(imports_of(name, path)) - {name} for name, path in modules().items()}


def test_every_module_is_in_a_known_layer() -> None:
    for name in modules():
        assert layer_of(name) in ALLOWED, f"{name}: add its package to ALLOWED in {__file__}"


def test_no_layer_imports_an_upper_one() -> None:
    violations = [
        f"{name} ({layer_of(name)}) imports {target} ({layer_of(target)})"
        for name, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) not in ALLOWED[layer_of(name)]
    ]
    assert violations == []


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(edges.get(node, ())):
            if cycle := visit(target):
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(edges):
        if cycle := visit(node):
            return cycle
    return None


def test_there_is_no_import_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_type_checking_imports_count(tmp_path: Path) -> None:
    """The reader sees an import under `if TYPE_CHECKING:` and inside a function."""
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from procrun.cli.main import main\n"
        "def f() -> None:\n    import procrun.control.client\n"
    )
    assert set(imports_of("procrun.x", source)) == {"procrun.cli.main", "procrun.control.client"}


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_holds_two_concerns(name: str) -> None:
    lines = modules()[name].read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines: split it by concern"


def test_the_module_map_names_every_module() -> None:
    """procrun/__init__.py's docstring lists each module by its path, one line each, with what
    it does; and names nothing that is gone."""
    listed = set(re.findall(r"^  (\S+\.py) ", procrun.__doc__ or "", re.MULTILINE))
    present = {
        str(path.relative_to(PACKAGE))
        for path in modules().values()
        if path.name != "__init__.py" or path.parent != PACKAGE
    }
    present = {p for p in present if not p.endswith("/__init__.py")}
    assert sorted(present - listed) == [], "add these to the map in procrun/__init__.py"
    assert sorted(listed - present) == [], "these are in the map but not in the package"

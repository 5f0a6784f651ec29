"""Running `procrun import supervisord` and `procrun check` as real processes, and reading what
the import wrote back with procrun's own parsers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procrun.project.procfile import load_procfile

REPO = Path(__file__).resolve().parents[2]
CONFIGS = Path(__file__).parent / "configs"
DOCS_GUIDE = REPO / "docs" / "migrating-from-supervisord.md"
DEADLINE_SECONDS = 60.0


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def lines(self, kind: str) -> list[str]:
        """The stderr lines of one kind (`dropped`, `note`, `warning`), without the prefix."""
        prefix = f"{kind}: "
        return [line[len(prefix) :] for line in self.stderr.splitlines() if line.startswith(prefix)]


def procrun(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "procrun", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def project_copy(tmp_path: Path, config: str) -> Path:
    """The sample configs copied into a project directory, as a user's repository holds its
    supervisord.conf: `%(here)s` is then the project directory."""
    project = tmp_path / "project"
    shutil.copytree(CONFIGS, project, ignore=shutil.ignore_patterns("bad"))
    assert (project / config).is_file()
    return project


def imported(project: Path, config: str | Path, *args: str) -> Result:
    """`procrun import supervisord CONFIG` in `project` (so into it: -o defaults to .)."""
    result = procrun("import", "supervisord", config, *args, cwd=project)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def checked(project: Path) -> str:
    """`procrun check` in the output directory must accept what the import wrote."""
    result = procrun("check", cwd=project, env={"PORT": "8000"})
    assert result.code == 0, result.stderr
    return result.stdout


def procfile_of(project: Path) -> dict[str, str]:
    return {e.name: e.command for e in load_procfile(project / "Procfile").entries}


def toml_of(project: Path) -> dict[str, Any]:
    return tomllib.loads((project / "procrun.toml").read_text())


def docs_example() -> str:
    """The supervisord.conf of the migration guide, as the guide shows it."""
    blocks = re.findall(r"```(?:ini|supervisord)\n(.*?)```", DOCS_GUIDE.read_text(), re.DOTALL)
    assert len(blocks) == 1, f"{DOCS_GUIDE}: expected one ```ini block, found {len(blocks)}"
    return str(blocks[0])


def docs_procfile() -> dict[str, str]:
    """The Procfile the guide says the example becomes."""
    text = DOCS_GUIDE.read_text()
    block = re.search(r"```\n(web: .*?)```", text, re.DOTALL)
    assert block is not None, f"{DOCS_GUIDE}: no Procfile block"
    entries = (line.partition(":") for line in block.group(1).splitlines() if line.strip())
    return {name.strip(): command.strip() for name, _, command in entries}

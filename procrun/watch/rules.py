"""Which changed files restart which processes: each type's `watch` patterns minus its
`watch_ignore`, never what the project ignores anyway (VCS folders, virtualenvs, caches, editors'
swap and backup files, and the patterns of the project's own .gitignore).

Patterns are gitignore-style (pathspec's gitwildmatch), relative to the project directory:
`app/**/*.py`, `templates/` (the folder and everything in it), `*.py` (anywhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pathspec

DEFAULT_IGNORES = (
    # version control
    ".git/",
    ".hg/",
    ".svn/",
    # virtualenvs and installed packages
    ".venv/",
    "venv/",
    ".tox/",
    ".nox/",
    "site-packages/",
    "node_modules/",
    # bytecode and tool caches
    "__pycache__/",
    "*.py[cod]",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".hypothesis/",
    ".cache/",
    # editors: vim's swap files and its 4913 write probe, emacs' locks and autosaves, backups
    "*.sw[a-p]",
    "4913",
    ".#*",
    "#*#",
    "*~",
    "*.bak",
    ".DS_Store",
)
GITIGNORE = ".gitignore"


class WatchRules:
    def __init__(
        self,
        root: Path,
        watches: Mapping[str, tuple[Sequence[str], Sequence[str]]],
        ignores: Iterable[str] = (),
    ) -> None:
        """`watches`: process name -> (its `watch` patterns, its `watch_ignore` patterns);
        `ignores`: more patterns ignored for everyone (the .gitignore's lines)."""
        self.root = root
        self._ignored = pathspec.GitIgnoreSpec.from_lines([*DEFAULT_IGNORES, *ignores])
        self._watches = {
            name: (
                pathspec.GitIgnoreSpec.from_lines(watch),
                pathspec.GitIgnoreSpec.from_lines(ignore),
            )
            for name, (watch, ignore) in watches.items()
            if watch
        }

    @classmethod
    def for_project(
        cls, root: Path, watches: Mapping[str, tuple[Sequence[str], Sequence[str]]]
    ) -> WatchRules:
        """With the project's own .gitignore (at its root) honoured."""
        try:
            lines = (root / GITIGNORE).read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        return cls(root, watches, lines)

    @property
    def watching(self) -> list[str]:
        return list(self._watches)

    def relative(self, path: str) -> str | None:
        """`app/views.py` for a path under the project, None for one outside it."""
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return None

    def processes_for(self, path: str) -> list[str]:
        """The processes a change to `path` (absolute) restarts."""
        relative = self.relative(path)
        if relative is None or self._ignored.match_file(relative):
            return []
        return [
            name
            for name, (watch, ignore) in self._watches.items()
            if watch.match_file(relative) and not ignore.match_file(relative)
        ]

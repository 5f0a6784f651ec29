"""The file watcher of `procrun start --watch`: watchfiles (the Rust notify crate on inotify, as
uvicorn's --reload uses) over the project directory, changes grouped over a debounce (one save
that touches five files is one restart), then each process that watches a changed file is
restarted through its own stop sequence: a Celery worker gets its warm shutdown. Processes that
watch the same file restart together. Such a restart does not count toward max_restarts; one
that gave up (a syntax error) is started again by the next change.

watchfiles is imported here only, and this module only when watching is on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import structlog

from procrun.errors import UsageError
from procrun.lifecycle import ProcessState
from procrun.process import ManagedProcess
from procrun.supervisor import Supervisor
from procrun.watch.rules import WatchRules

log = structlog.get_logger()

STEP_MILLISECONDS = 50
"""How long watchfiles waits for more changes once one came (and how often its thread looks)."""
SHOWN_PATHS = 5
RESTARTED = frozenset({ProcessState.STARTING, ProcessState.RUNNING, ProcessState.BACKOFF})
STARTED_AGAIN = frozenset({ProcessState.FATAL, ProcessState.EXITED})


def import_watchfiles() -> None:
    """Fail early, as bad input does, when the extra is not installed."""
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise UsageError(
            "--watch needs the watchfiles package: pip install 'procrun[watch]'"
        ) from None


class FileWatcher:
    def __init__(self, supervisor: Supervisor, rules: WatchRules, debounce_seconds: float) -> None:
        self._supervisor = supervisor
        self._rules = rules
        self._debounce_ms = max(round(debounce_seconds * 1000), STEP_MILLISECONDS)
        self._stop = asyncio.Event()
        self._restarts: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Until stop(): watch, and restart what the changes concern."""
        import watchfiles

        log.info(
            "watch.started",
            root=str(self._rules.root),
            processes=",".join(self._rules.watching),
            debounce=self._debounce_ms / 1000,
        )
        async for changes in watchfiles.awatch(
            self._rules.root,
            watch_filter=lambda change, path: bool(self._rules.processes_for(path)),
            debounce=self._debounce_ms,
            step=STEP_MILLISECONDS,
            rust_timeout=0,  # no periodic timeout: stop() ends the watch through its event
            stop_event=self._stop,
        ):
            self.changed(path for _, path in changes)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._restarts, return_exceptions=True)

    def changed(self, paths: Iterable[str]) -> None:
        """Restart (or start again) every process a changed path concerns."""
        touched: dict[str, list[str]] = {}
        for path in sorted(set(paths)):
            for name in self._rules.processes_for(path):
                touched.setdefault(name, []).append(self._rules.relative(path) or path)
        if not touched or self._supervisor.shutting_down:
            return
        chosen = [p for p in self._supervisor.processes if p.spec.kind in touched]
        acting = [p for p in chosen if p.state in RESTARTED | STARTED_AGAIN]
        if not acting:
            return
        changed = sorted({path for kind_paths in touched.values() for path in kind_paths})
        shown = ", ".join(changed[:SHOWN_PATHS])
        if len(changed) > SHOWN_PATHS:
            shown += f" and {len(changed) - SHOWN_PATHS} more"
        log.info("watch.restarting", processes=",".join(p.name for p in acting), changed=shown)
        for process in acting:
            task = asyncio.ensure_future(self._restart(process, f"changed: {shown}"))
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)

    async def _restart(self, process: ManagedProcess, reason: str) -> None:
        if process.state in STARTED_AGAIN:
            await self._supervisor.start_process(process, reason=reason)
        else:
            # Not counted, and with a fresh budget: edits are not crashes.
            await self._supervisor.restart_process(process, reason)


def watch_rules(root: Path, supervisor: Supervisor) -> WatchRules:
    """Each process type's patterns, as its settings give them."""
    watches = {
        p.spec.kind: (p.spec.settings.watch, p.spec.settings.watch_ignore)
        for p in supervisor.processes
    }
    return WatchRules.for_project(root, watches)

"""What the control socket may ask of a running supervisor: a fixed set of operations.

control.py speaks the wire protocol and calls these; the supervisor implements them. Nothing is
looked up by a name that came off the wire (supervisord's CVE-2017-11610 came from doing that).
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol


class ControlTarget(Protocol):
    async def status(self, names: Sequence[str]) -> dict[str, Any]:
        """{"supervisor": {...}, "processes": [{...}, ...]} as JSON-ready values.
        Raises UsageError for an unknown name."""
        ...

    async def start(self, names: Sequence[str]) -> list[str]:
        """Start stopped processes; the instance names acted on."""
        ...

    async def stop(self, names: Sequence[str]) -> list[str]:
        """Stop with each process's own stop sequence; returns once they have stopped."""
        ...

    async def restart(self, names: Sequence[str]) -> list[str]:
        """Graceful stop, then start again."""
        ...

    def send_signal(self, names: Sequence[str], sig: signal.Signals, group: bool) -> list[str]:
        """Deliver `sig` to each main pid (or each process group); 'web.1: delivered' lines."""
        ...

    def recent_lines(self, names: Sequence[str], count: int) -> list[tuple[str, str]]:
        """Up to `count` most recent (instance name, line) pairs, oldest first."""
        ...

    def follow(self, names: Sequence[str]) -> AsyncIterator[tuple[str, str]]:
        """New (instance name, line) pairs as they are relayed, until the client goes away."""
        ...

    def request_shutdown(self, reason: str) -> None: ...

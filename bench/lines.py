"""Reading a tool's output back: its prefix stripped, its own event lines told apart.

procrun writes `c1.1 | line` (its own events as `procrun | ...`), honcho `12:00:00 c1.1 | line`
(its own as `system`), supervisord with stdout_logfile=/dev/stdout passes the child's bytes
unprefixed and logs its own events as `2024-01-01 12:00:00,000 INFO ...`; tini and the direct
pipe add nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from bench.tools import HONCHO, PROCRUN, SUPERVISORD, Tool

_PREFIXES: dict[str, re.Pattern[bytes]] = {
    PROCRUN.name: re.compile(rb"(\S+?) *\| "),
    HONCHO.name: re.compile(rb"\d\d:\d\d:\d\d (\S+?) *\| "),
}
_OWN_NAMES = {b"procrun", b"system"}
_SUPERVISORD_OWN = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]{4} ")


@dataclass(frozen=True)
class Line:
    name: bytes | None  # the process the prefix names; None when the tool adds no prefix
    body: bytes


OWN = Line(b"", b"")  # one of the tool's own event lines
UNPREFIXED = Line(None, b"")  # a line that should carry the tool's prefix and does not


def parse(tool: Tool, line: bytes) -> Line:
    prefix = _PREFIXES.get(tool.name)
    if prefix is None:
        if tool is SUPERVISORD and _SUPERVISORD_OWN.match(line):
            return OWN
        return Line(None, line)
    match = prefix.match(line)
    if match is None:
        return UNPREFIXED
    name = match.group(1)
    return OWN if name in _OWN_NAMES else Line(name, line[match.end() :])


def child_lines(tool: Tool, data: bytes) -> Iterator[tuple[bytes, Line]]:
    """Each non-empty line of `data` as written and as parsed, the tool's own lines left out."""
    for raw in data.split(b"\n"):
        if raw and (line := parse(tool, raw)) is not OWN:
            yield raw, line

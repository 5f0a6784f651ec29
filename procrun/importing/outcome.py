"""What an import produces besides files: each procrun.toml setting with the supervisord key it
comes from, and the lines that say what was left out and what to check."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Kind(enum.StrEnum):
    DROPPED = "dropped"  # a key or section with no equivalent, and why
    NOTE = "note"  # a mapping that differs from supervisord in a way worth knowing
    WARNING = "warning"  # something to check or fix by hand


@dataclass(frozen=True)
class Message:
    kind: Kind
    text: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}"


TomlValue = str | int | bool | Mapping[str, str]


@dataclass(frozen=True)
class Setting:
    """`grace = "600s"  # stopwaitsecs=600 (supervisord.conf:31)`."""

    key: str
    value: TomlValue
    comment: str

"""supervisord's `%(name)s` expansions, and what each becomes in a Procfile.

supervisord expands a value with Python's `%` operator over a table of names, so `%(name)s`,
`%(process_num)02d` and `%%` (a literal `%`) are its syntax, and any other `%` is an error to it.
Names whose value is known when importing (`here`, `program_name`, `group_name`, `process_num`,
`numprocs`) become their text. `%(ENV_X)s` is the environment supervisord started with; under
procrun that is the process's own environment at run time, so it stays a reference (EnvRef) that
the shell resolves as `${X}`. `%(host_node_name)s` is the machine's name at run time: `${HOSTNAME}`,
which Docker and Kubernetes set in every container.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from procrun.errors import ConfigError
from procrun.quoting import did_you_mean, excerpt


@dataclass(frozen=True)
class EnvRef:
    """A variable of the process's environment, resolved when it runs: `${name}`."""

    name: str


@dataclass(frozen=True)
class InstanceNumber:
    """`%(process_num)s` of a type run as `count` instances: the number in `PS=worker.2`."""


Part = str | EnvRef | InstanceNumber
Expanded = tuple[Part, ...]
"""A value after expansion: literal text and the references only the running process knows."""

HOSTNAME = EnvRef("HOSTNAME")
ENV_PREFIX = "ENV_"

# Python's `%` conversion: `%(name)` then flags, width, precision, length and the type; `%%`.
_EXPANSION = re.compile(
    r"%(?:(?P<percent>%)|\((?P<name>[^)]*)\)(?P<spec>[-#0 +]*[0-9]*(?:\.[0-9]+)?[hlL]?"
    r"[diouxXeEfFgGcrsa]))"
)


def expand(text: str, names: Mapping[str, object], what: str, *, runtime_env: bool) -> Expanded:
    """`text` with its expansions done; `what` (`supervisord.conf:9: [program:web] command`)
    starts every error. `names` maps a name to its value: text, a number, or a Part kept for run
    time. With `runtime_env`, an `ENV_X` that `names` lacks is EnvRef("X")."""
    parts: list[Part] = []
    literal: list[str] = []
    position = 0
    for match in _EXPANSION.finditer(text):
        literal.append(_plain(text[position : match.start()], what))
        position = match.end()
        if match.group("percent"):
            literal.append("%")
            continue
        name, spec = match.group("name"), match.group("spec")
        value = _lookup(name, names, what, runtime_env=runtime_env)
        if isinstance(value, EnvRef | InstanceNumber):
            if not spec.endswith("s") and isinstance(value, EnvRef):
                raise ConfigError(
                    f"{what}: %({excerpt(name)}){spec}: the environment is text; "
                    f"write %({excerpt(name)})s"
                )
            if text_so_far := "".join(literal):
                parts.append(text_so_far)
            literal = []
            parts.append(value)
            continue
        literal.append(_format(name, spec, value, what))
    literal.append(_plain(text[position:], what))
    if text_left := "".join(literal):
        parts.append(text_left)
    return tuple(parts)


def _plain(text: str, what: str) -> str:
    """Text between expansions: a `%` here is one supervisord cannot expand either."""
    if "%" in text:
        start = text.index("%")
        raise ConfigError(
            f'{what}: "{excerpt(text[start : start + 12])}" is not an expansion: '
            'supervisord rejects it too; write %% for a literal "%", or %(name)s'
        )
    return text


def _lookup(name: str, names: Mapping[str, object], what: str, *, runtime_env: bool) -> object:
    if name in names:
        return names[name]
    if runtime_env and name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
        return EnvRef(name.removeprefix(ENV_PREFIX))
    known = sorted(key for key in names if not key.startswith(ENV_PREFIX))
    if name.startswith(ENV_PREFIX):
        raise ConfigError(
            f"{what}: %({excerpt(name)})s: {name.removeprefix(ENV_PREFIX)} is not set in the "
            "environment; set it, or write the value"
        )
    choices = [*known, "ENV_<NAME>"]
    raise ConfigError(
        f"{what}: unknown expansion %({excerpt(name)})s{did_you_mean(name, known)}; "
        f"supervisord knows {', '.join(choices)} here; write %% for a literal %"
    )


def _format(name: str, spec: str, value: object, what: str) -> str:
    try:
        return ("%" + spec) % (value,)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{what}: %({excerpt(name)}){spec} needs a number, and {name} is text; "
            f"write %({excerpt(name)})s"
        ) from None


def specs_of(text: str, name: str) -> set[str]:
    """The conversions `text` applies to `name`: {"s", "02d"} for `%(n)s ... %(n)02d`."""
    return {m.group("spec") for m in _EXPANSION.finditer(text) if m.group("name") == name}


def literal_text(parts: Expanded) -> str | None:
    """The text of an expansion that holds no run-time reference, else None."""
    if all(isinstance(part, str) for part in parts):
        return "".join(part for part in parts if isinstance(part, str))
    return None


def references(parts: Expanded) -> Iterator[EnvRef | InstanceNumber]:
    return (part for part in parts if not isinstance(part, str))


def shell_reference(part: EnvRef | InstanceNumber) -> str:
    """How /bin/sh says it: `${PORT}`; the instance number is what follows the dot of PS."""
    return "${PS##*.}" if isinstance(part, InstanceNumber) else f"${{{part.name}}}"

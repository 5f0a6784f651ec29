"""[group:x] and `priority` -> the programs in supervisord's start order: groups and programs by
priority, then by name, each group's programs by their own priority within it.

That order is all procrun keeps of it: procrun starts every process at once and stops them in
parallel (`depends_on` orders starts by readiness, where that matters). [group:x] has no
equivalent: its programs are process types of their own.
"""

from __future__ import annotations

from collections.abc import Mapping

from procrun.errors import ConfigError
from procrun.importing.outcome import Kind, Message
from procrun.importing.programkeys import Reader
from procrun.importing.supervisordconf import Section, SupervisordConf
from procrun.quoting import did_you_mean, excerpt

DEFAULT_PRIORITY = 999


def is_section(section: Section, kind: str) -> bool:
    """Whether `section` is a `[kind:name]` one."""
    return section.name.partition(":")[0].strip() == kind and ":" in section.name


def start_order(
    conf: SupervisordConf, programs: Mapping[str, Section], messages: list[Message]
) -> list[tuple[str, list[Section]]]:
    """(group name, its programs) in supervisord's start order."""
    units: list[tuple[int, str, list[Section]]] = []
    grouped: set[str] = set()
    ordered = False
    for section in conf.sections:
        if not is_section(section, "group"):
            continue
        group = section.name.partition(":")[2].strip()
        reader = Reader(section, {"here": "", "group_name": group})
        names = [n.strip() for n in reader.literal("programs", "").split(",") if n.strip()]
        if not names:
            raise ConfigError(f"{section.what('programs')}: name the programs: programs=a,b")
        for name in names:
            if name not in programs:
                raise ConfigError(
                    f"{section.what('programs')}: no [program:{excerpt(name)}]"
                    f"{did_you_mean(name, programs)} (supervisord refuses it too)"
                )
        members = [programs[name] for name in names if name not in grouped]
        grouped.update(names)
        ordered |= "priority" in section.values
        units.append((reader.integer("priority", DEFAULT_PRIORITY), group, _by_priority(members)))
        messages.append(
            Message(
                Kind.NOTE,
                f"{section.where}: [{section.name}] programs={','.join(names)}: procrun has no "
                f"groups: {', '.join(names)} are process types of their own "
                f"(`procrun restart {' '.join(names)}`)",
            )
        )
    for name, section in programs.items():
        ordered |= "priority" in section.values
        if name not in grouped:
            units.append((_priority(section), name, [section]))
    units.sort(key=lambda unit: (unit[0], unit[1]))
    if ordered:
        messages.append(
            Message(
                Kind.NOTE,
                "priority: the Procfile lists the programs in supervisord's start order ("
                + ", ".join(_described(unit) for unit in units)
                + "); "
                "procrun starts them all at once and stops them in parallel, each with its "
                "own grace (depends_on in procrun.toml orders starts by readiness)",
            )
        )
    return [(group, sections) for _, group, sections in units]


def _described(unit: tuple[int, str, list[Section]]) -> str:
    """`web 10`, or `jobs 100: mailer 200, worker 999` for a group."""
    priority, name, sections = unit
    if len(sections) == 1 and sections[0].name.partition(":")[2].strip() == name:
        return f"{name} {priority}"
    members = ", ".join(f"{s.name.partition(':')[2].strip()} {_priority(s)}" for s in sections)
    return f"[group:{name}] {priority}: {members}"


def _priority(section: Section) -> int:
    return Reader(section, {"here": ""}).integer("priority", DEFAULT_PRIORITY, minimum=-(2**31))


def _by_priority(sections: list[Section]) -> list[Section]:
    return sorted(sections, key=lambda s: (_priority(s), s.name))

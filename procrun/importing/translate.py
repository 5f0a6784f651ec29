"""A whole supervisord.conf -> the Procfile entries, the procrun.toml settings, the secrets for
.env, and a line for everything left out.

The Procfile lists the programs in supervisord's start order (startorder.py).

The project directory is where the Procfile is, and every process runs there unless it has a
`cwd`. When no program's `directory=` is in the output directory, the one most of them share
(`/app` in an image) is taken to be the project's: those programs get no `cwd`, and a note says
to put the files there.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from procrun.errors import ConfigError
from procrun.importing.environment import Variable, parse_environment
from procrun.importing.expansions import HOSTNAME, expand
from procrun.importing.outcome import Kind, Message, Setting
from procrun.importing.program import Draft, translate_program, with_assignments
from procrun.importing.programkeys import Reader
from procrun.importing.sections import section_note
from procrun.importing.startorder import is_section, start_order
from procrun.importing.supervisordconf import Section, SupervisordConf

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_SET_BY_PROCRUN = frozenset({"PORT", "PS", "HOME", "PATH"})  # or by every container


@dataclass(frozen=True)
class Entry:
    name: str
    command: str
    settings: tuple[Setting, ...]
    origin: str
    """`[program:web] (supervisord.conf:12)`."""


@dataclass(frozen=True)
class Imported:
    source: SupervisordConf
    entries: tuple[Entry, ...]
    defaults: tuple[Setting, ...]
    secrets: Mapping[str, str]
    """Variables for .env: their values are never printed."""
    messages: tuple[Message, ...]


def translate(conf: SupervisordConf, project: Path) -> Imported:
    """`project` is the output directory: the one the Procfile will be in."""
    messages = [Message(Kind.NOTE, note) for note in conf.notes]
    programs = {
        s.name.partition(":")[2].strip(): s for s in conf.sections if is_section(s, "program")
    }
    if not programs:
        raise ConfigError(
            f"{conf.path}: no [program:x] section, so nothing to import; is this the "
            "supervisord.conf that starts the programs?"
        )
    global_env: list[Variable] = []
    for section in conf.sections:
        if section.name == "supervisord":
            global_env = _global_environment(section, messages)
        if not is_section(section, "program") and not is_section(section, "group"):
            messages.extend(section_note(section))
    drafts: list[Draft] = []
    for group, sections in start_order(conf, programs, messages):
        for section in sections:
            found, said = translate_program(section, group)
            drafts += found
            messages += said
    _check_unique(drafts)
    drafts = _something_to_run(drafts, messages)
    assignments = [v.assignment() for v in global_env if v.literal is None]
    if assignments:
        drafts = [replace(d, command=with_assignments(d.command, assignments)) for d in drafts]
    drafts = _working_directories(drafts, Path(os.path.normpath(project.absolute())), messages)
    secrets: dict[str, str] = {}
    defaults = _env_settings(
        [v for v in global_env if v.literal is not None], "[supervisord]", secrets, messages
    )
    entries = []
    for draft in drafts:
        origin = f"[{draft.section.name}] ({draft.section.where})"
        env = _env_settings(list(draft.env), origin, secrets, messages)
        entries.append(Entry(draft.name, draft.command, (*draft.settings, *env), origin))
    messages += _summary(drafts, global_env, secrets)
    return Imported(conf, tuple(entries), tuple(defaults), secrets, tuple(messages))


def _global_environment(section: Section, messages: list[Message]) -> list[Variable]:
    """[supervisord] environment=: every program's."""
    if "environment" not in section.values:
        return []
    reader = Reader(section, {"here": "", "host_node_name": HOSTNAME})
    what = section.what("environment")
    parts = expand(
        reader.raw("environment") or "", reader.names_for("environment"), what, runtime_env=True
    )
    variables = []
    for variable in parse_environment(parts, what):
        if variable.passes_through:
            reason = "the real environment reaches every process under procrun"
            messages.append(Message(Kind.DROPPED, f"{what}: {variable.name}: {reason}"))
        else:
            variables.append(variable)
    return variables


def _something_to_run(drafts: list[Draft], messages: list[Message]) -> list[Draft]:
    """autostart=false everywhere would leave procrun nothing to start (and `procrun check`
    refuses that): then every program starts, and a warning says so."""
    if not all(any(s.key == "count" and s.value == 0 for s in d.settings) for d in drafts):
        return drafts
    messages.append(
        Message(
            Kind.WARNING,
            "every program has autostart=false, and procrun needs one to start: the Procfile "
            "starts them all; `procrun start NAME` starts only those named",
        )
    )
    return [replace(d, settings=tuple(s for s in d.settings if s.key != "count")) for d in drafts]


def _check_unique(drafts: list[Draft]) -> None:
    seen: dict[str, Draft] = {}
    for draft in drafts:
        if (earlier := seen.get(draft.name)) is not None:
            raise ConfigError(
                f"{draft.section.where}: [{draft.section.name}] would be the Procfile entry "
                f'"{draft.name}", as [{earlier.section.name}] ({earlier.section.where}) is: '
                "rename one of them"
            )
        seen[draft.name] = draft


def _working_directories(
    drafts: list[Draft], project: Path, messages: list[Message]
) -> list[Draft]:
    absolute = [
        d.directory for d in drafts if d.directory is not None and d.directory.is_absolute()
    ]
    outside = [path for path in absolute if not path.is_relative_to(project)]
    # Taken for the project's own only when no program runs in the output directory already.
    common = Counter(outside).most_common(1)[0][0] if outside == absolute and outside else None
    result = []
    for draft in drafts:
        directory, settings = draft.directory, list(draft.settings)
        if directory is not None and directory != common:
            if directory.is_absolute() and directory.is_relative_to(project):
                directory = directory.relative_to(project)
            if directory != Path("."):
                shown = f"directory={draft.section.values['directory'].text.strip()}"
                settings.append(Setting("cwd", str(directory), shown))
        result.append(replace(draft, settings=tuple(settings)))
    if common is not None:
        which = ", ".join(d.name for d in drafts if d.directory == common)
        messages.append(
            Message(
                Kind.NOTE,
                f"directory={common} ({which}): procrun runs every process in the project "
                f"directory, the Procfile's: put Procfile and procrun.toml in {common} (WORKDIR "
                f"{common} in the image), or set cwd",
            )
        )
    return result


def _env_settings(
    variables: list[Variable], origin: str, secrets: dict[str, str], messages: list[Message]
) -> list[Setting]:
    """The `env` setting of one table; values that look like secrets go to `secrets` (.env)
    instead, unless another program already put a different value there under that name."""
    env: dict[str, str] = {}
    for variable in variables:
        value = variable.literal or ""
        if variable.secret and secrets.get(variable.name, value) == value and "${" not in value:
            secrets[variable.name] = value
            continue
        if variable.secret:
            messages.append(
                Message(
                    Kind.WARNING,
                    f"{origin} environment: {variable.name} looks like a secret but stays in "
                    "procrun.toml (another program has another value for it in .env, or it "
                    "holds ${, which .env would expand): move it to the platform's environment",
                )
            )
        env[variable.name] = value
    return [Setting("env", env, f"environment= of {origin}")] if env else []


def _summary(
    drafts: list[Draft], global_env: list[Variable], secrets: Mapping[str, str]
) -> list[Message]:
    said = []
    default_grace = [d.name for d in drafts if not any(s.key == "grace" for s in d.settings)]
    if default_grace:
        said.append(
            Message(
                Kind.NOTE,
                f"{', '.join(default_grace)}: no stopwaitsecs (supervisord's default is 10 s): "
                "procrun's grace applies, 30 s (600 s for a Celery worker); set grace to keep 10 s",
            )
        )
    if global_env or any(d.env for d in drafts):
        said.append(
            Message(
                Kind.NOTE,
                "environment: under procrun the real environment beats procrun.toml's env and "
                ".env (supervisord's environment= beat the real one)",
            )
        )
    read = sorted(
        {name for d in drafts for name in _REFERENCE.findall(d.command)} - _SET_BY_PROCRUN
    )
    if read:
        hostname = " (HOSTNAME, for %(host_node_name)s: Docker and Kubernetes set it)"
        said.append(
            Message(
                Kind.NOTE,
                f"the commands read {', '.join(read)} from the environment when they start "
                "(supervisord did once, at its own start, and refused to start without them): "
                "set them in the platform's environment, .env or procrun.toml's env"
                + (hostname if "HOSTNAME" in read else ""),
            )
        )
    if secrets:
        said.append(
            Message(
                Kind.NOTE,
                f"secrets: {', '.join(sorted(secrets))} written to .env (mode 0600), not "
                "procrun.toml: keep .env out of git and of the image",
            )
        )
    return said

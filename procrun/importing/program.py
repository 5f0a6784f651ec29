"""One supervisord [program:x] section -> the Procfile entries and procrun.toml settings it
amounts to, and a line for each key procrun has no use for.

`numprocs` becomes `count` (instances x.1, x.2, with PS=x.1 in their environment). Where the
command uses `%(process_num)s` and numbering starts at 1 (`numprocs_start=1`), it becomes
`${PS##*.}`, the number in PS. Otherwise (numbering from 0, `%(process_num)02d`, the number in
`environment` or `directory`) each process becomes an entry of its own, named by `process_name`
as supervisord names it, so that every number is the one supervisord gave.

`directory` and `umask`, when they cannot be settings (a directory from the environment), and
`environment` values that refer to the environment go in front of the command, where /bin/sh
runs them: `umask 002 && DATA="${HOME}/data" celery ...`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from procrun.errors import ConfigError
from procrun.importing.environment import Variable, double_quoted, parse_environment
from procrun.importing.expansions import HOSTNAME, InstanceNumber, expand, literal_text, specs_of
from procrun.importing.lifecyclekeys import lifecycle_settings
from procrun.importing.outcome import Kind, Message, Setting
from procrun.importing.programkeys import (
    DROPPED,
    LOG_FILE_REASON,
    PROGRAM_KEYS,
    Reader,
    is_stream,
)
from procrun.importing.shellwords import shell_command
from procrun.importing.supervisordconf import Section
from procrun.project.procfile import RELEASE_PROCESS
from procrun.project.shell import shell_leads
from procrun.quoting import did_you_mean, excerpt

_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_-]")
_PROCESS_NUM = "%(process_num)"
_NUMBERED = ("command", "environment", "directory")
_LOG_KEYS = {
    "stdout_logfile": ("stdout_logfile_maxbytes", "stdout_logfile_backups"),
    "stderr_logfile": ("stderr_logfile_maxbytes", "stderr_logfile_backups"),
}
_WITH_LOG_FILE = frozenset(key for keys in _LOG_KEYS.values() for key in keys)
_MAPPED = frozenset(
    {"command", "numprocs", "numprocs_start", "autostart", "autorestart", "startsecs"}
    | {"startretries", "exitcodes", "stopsignal", "stopwaitsecs", "environment", "directory"}
    | {"umask", "priority", "redirect_stderr"}
)


@dataclass(frozen=True)
class Draft:
    """One Procfile entry as its [program:x] says it, before the decisions that take every
    program into account (the project directory, where secrets go)."""

    name: str
    command: str
    settings: tuple[Setting, ...]
    env: tuple[Variable, ...]
    """The literal values of `environment=`, for procrun.toml's env or .env."""
    section: Section
    directory: Path | None


def translate_program(section: Section, group: str) -> tuple[list[Draft], list[Message]]:
    """The entries of one [program:x]; `group` is its [group:x], or its own name."""
    name = section.name.partition(":")[2].strip()
    messages: list[Message] = []
    base: dict[str, object] = {"program_name": name, "group_name": group, "here": ""}
    base["host_node_name"] = HOSTNAME
    first = Reader(section, base)
    numprocs = first.integer("numprocs", 1, minimum=1)
    start = first.integer("numprocs_start", 0)
    base |= {"numprocs": numprocs, "process_num": start}
    if not first.has("command"):
        raise ConfigError(
            f"{section.where}: [{section.name}] has no command=; add command=<program and "
            "its arguments>"
        )
    process_name = first.raw("process_name") or "%(program_name)s"
    if numprocs > 1 and _PROCESS_NUM not in process_name:
        raise ConfigError(
            f"{section.what('process_name')}: numprocs={numprocs} needs %(process_num)s in "
            "process_name (supervisord refuses it too), e.g. %(program_name)s_%(process_num)02d"
        )
    numbered = [key for key in _NUMBERED if _PROCESS_NUM in (first.raw(key) or "")]
    command_specs = specs_of(first.raw("command") or "", "process_num")
    by_ps = numbered == ["command"] and start == 1 and command_specs <= {"s", "d"}
    if numprocs == 1 or not numbered or by_ps:
        number: object = InstanceNumber() if by_ps else start
        instances = [(_procfile_name(name, section, messages.append), number)]
    else:
        instances = [
            (_procfile_name(_process_name(first, process_name, n), section, messages.append), n)
            for n in range(start, start + numprocs)
        ]
        messages.append(
            Message(
                Kind.NOTE,
                f"{section.what('numprocs')}={numprocs}: %(process_num)s is used where "
                "procrun's instance number (from 1, in PS) cannot stand for it: written as "
                f"{numprocs} entries, {', '.join(entry for entry, _ in instances)}",
            )
        )
    drafts = [
        # Each instance says the same things: only the first one's messages are kept.
        _draft(
            section,
            entry,
            {**base, "process_num": n},
            count=numprocs // len(instances),
            say=messages.append if i == 0 else lambda message: None,
        )
        for i, (entry, n) in enumerate(instances)
    ]
    messages.extend(_left_out(first, name, process_name_used=len(instances) > 1))
    return drafts, messages


def _process_name(reader: Reader, process_name: str, number: int) -> str:
    names = {**reader.names_for("process_name"), "process_num": number}
    what = reader.section.what("process_name")
    return literal_text(expand(process_name, names, what, runtime_env=False)) or ""


def _procfile_name(name: str, section: Section, say: Callable[[Message], None]) -> str:
    valid = _NOT_A_NAME.sub("_", name) or "program"
    if valid == RELEASE_PROCESS:
        valid = f"{RELEASE_PROCESS}_"
        say(
            Message(
                Kind.NOTE,
                f"{section.where}: [{section.name}]: named {valid}: procrun runs an entry named "
                "release once, before everything else (Heroku's convention); rename it release "
                "if that is what it is",
            )
        )
    elif valid != name:
        say(
            Message(
                Kind.NOTE,
                f'{section.where}: [{section.name}]: "{excerpt(name)}" is named {valid} in the '
                "Procfile (letters, digits, _ and - only)",
            )
        )
    return valid


def _draft(
    section: Section,
    name: str,
    names: dict[str, object],
    count: int,
    say: Callable[[Message], None],
) -> Draft:
    reader = Reader(section, names)
    what = section.what
    parts = expand(
        reader.raw("command") or "", reader.names_for("command"), what("command"), runtime_env=True
    )
    command = shell_command(parts, what("command"))
    if command.literal_dollar:
        say(
            Message(
                Kind.WARNING,
                f"{what('command')}: a $ or ` reaches the program as it is (supervisord runs "
                "no shell), so it is quoted in the Procfile: unquote it if the shell should "
                "expand it",
            )
        )
    prefixes: list[str] = []
    directory = None
    if reader.has("directory"):
        where = what("directory")
        value = expand(
            reader.raw("directory") or "", reader.names_for("directory"), where, runtime_env=True
        )
        text = literal_text(value)
        if text is None:  # procrun.toml's cwd is literal: the shell changes directory
            prefixes.append(f"cd {double_quoted(value)}")
        else:
            directory = Path(os.path.normpath(text.strip()))
    if (umask := reader.umask()) is not None:
        prefixes.append(f"umask {umask}")
    literal, assignments = _environment(reader, say)
    text = " && ".join([*prefixes, with_assignments(command.text, assignments)])
    if "\n" in text or "\r" in text:
        raise ConfigError(
            f"{what('command')} holds a line break inside quotes, and a Procfile entry is one "
            "line: put the commands in a script, and run that"
        )
    settings = lifecycle_settings(reader, name, text, say)
    if not reader.boolean("autostart", True):
        start = f"autostart=false: start it with `procrun scale {name}={max(count, 1)}`"
        settings.insert(0, Setting("count", 0, start))
    elif count > 1:
        settings.insert(0, Setting("count", count, f"numprocs={count}: {name}.1 to {name}.{count}"))
    return Draft(name, text, tuple(settings), tuple(literal), section, directory)


def with_assignments(command: str, assignments: list[str]) -> str:
    """`A="1" B="2" command`; for a compound command, `export` first: an assignment in front
    would reach its first step only."""
    if not assignments:
        return command
    if shell_leads(command):
        return " && ".join([*(f"export {assignment}" for assignment in assignments), command])
    return " ".join([*assignments, command])


def _environment(
    reader: Reader, say: Callable[[Message], None]
) -> tuple[list[Variable], list[str]]:
    """The literal variables, and the assignments for the variables that use the environment."""
    if not reader.has("environment"):
        return [], []
    what = reader.section.what("environment")
    parts = expand(
        reader.raw("environment") or "", reader.names_for("environment"), what, runtime_env=True
    )
    literal, assignments = [], []
    for variable in parse_environment(parts, what):
        if variable.passes_through:
            say(
                Message(
                    Kind.DROPPED,
                    f"{what}: {variable.name}=%(ENV_{variable.name})s: the real environment "
                    "reaches every process under procrun",
                )
            )
        elif variable.literal is not None:
            literal.append(variable)
        else:
            assignments.append(variable.assignment())
    return literal, assignments


def _left_out(reader: Reader, name: str, *, process_name_used: bool) -> list[Message]:
    """A line for each key with no procrun equivalent, and for each key supervisord ignores."""
    messages = []
    section = reader.section
    for key, value in section.values.items():
        what, shown = section.what(key), excerpt(value.text.strip())
        if key in _MAPPED or key in _WITH_LOG_FILE or (key == "process_name" and process_name_used):
            if key == "redirect_stderr" and not reader.boolean(key, False):
                reason = "procrun relays stderr and stdout as one stream"
                messages.append(Message(Kind.DROPPED, f"{what}={shown}: {reason}"))
            continue
        if key in _LOG_KEYS:
            if not is_stream(value.text):
                also = [other for other in _LOG_KEYS[key] if other in section.values]
                with_them = f" (and {', '.join(also)})" if also else ""
                reason = LOG_FILE_REASON.format(name=name)
                messages.append(Message(Kind.DROPPED, f"{what}={shown}{with_them}: {reason}"))
        elif key in DROPPED:
            reason = DROPPED[key].format(value=shown, name=name)
            messages.append(Message(Kind.DROPPED, f"{what}={shown}: {reason}"))
        elif key not in PROGRAM_KEYS:
            hint = did_you_mean(key, PROGRAM_KEYS)
            messages.append(
                Message(Kind.WARNING, f"{what}: unknown key{hint} (supervisord ignores it too)")
            )
    return messages

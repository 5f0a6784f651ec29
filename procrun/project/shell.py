"""How a Procfile command runs: through /bin/sh, with `exec` wherever the program can lead.

The program that leads the process group is the one that receives the stop signal, so for a
simple command the shell replaces itself with the program (`exec`). Without exec the shell would
lead: it would receive the stop signal and die, leaving the real program to the SIGKILL at the
deadline. A list of simple commands joined by `&&` or `;` (Heroku's `migrate && gunicorn`) execs
its last one: while the earlier steps run the shell leads, and procrun's stop signal goes to the
step it runs (stopping.deliver); once the last program has replaced the shell, it alone gets the
stop signal and its grace.
"""

from __future__ import annotations

import functools
import re
import shlex

from procrun.settings import SHELL

_SHELL_OPERATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", ";;", "|&", "\n"})
_SHELL_KEYWORDS = frozenset(
    {"if", "while", "until", "for", "case", "{", "!", "function", "select", "[[", "coproc"}
)
_LEADING_ASSIGNMENTS = re.compile(
    r"""\s*(?:[A-Za-z_][A-Za-z0-9_]*=(?:'[^']*'|"(?:\\.|[^"\\])*"|\\.|[^\s'"\\])*\s+)*"""
)


def shell_argv(command: str) -> tuple[str, ...]:
    """The argv that runs `command` through /bin/sh, with `exec` so the program itself leads the
    process group.

    Compound commands (`a && b`, pipelines, `;`, `&`, control structures) cannot be exec'd as a
    whole; they run under the shell, which then gets the stop signal. Leading `VAR=value`
    assignments stay in front of exec, where sh keeps them.
    """
    if not _is_compound(command):
        return (SHELL, "-c", _exec(command))
    split = _last_step_at(command)
    if split is None:
        return (SHELL, "-c", command)
    return (SHELL, "-c", f"{command[:split]} {_exec(command[split:].strip())}")


def shell_leads(command: str) -> bool:
    """Whether /bin/sh leads the group for a while (a compound command): then the stop signal
    goes to the group while the shell still runs."""
    return _is_compound(command)


def last_step(command: str) -> str | None:
    """The simple command that ends up leading: the command itself, or the last step of an
    `&&`/`;` list; None when the shell leads throughout (a pipeline, `&`, a control structure)."""
    if not _is_compound(command):
        return command
    split = _last_step_at(command)
    return None if split is None else command[split:].strip()


def _exec(command: str) -> str:
    assignments = _LEADING_ASSIGNMENTS.match(command)
    split = assignments.end() if assignments else 0
    if _execs_program(command[split:].split(maxsplit=2)):
        return command  # `exec gunicorn ...` replaces the shell already
    return f"{command[:split]}exec {command[split:]}"


def _execs_program(words: list[str]) -> bool:
    """`exec prog ...`: the shell replaces itself with a program. A bare `exec` or one with
    redirections only (`exec >log 2>&1`) changes the shell's own files and leaves it running."""
    if len(words) < 2 or words[0] != "exec":
        return False
    after = words[1]
    return not after.lstrip("0123456789").startswith(("<", ">", "&"))


def _last_step_at(command: str) -> int | None:
    """Where the last step of a list of simple commands joined by `&&` or `;` begins; None for
    any other compound command."""
    separators = _top_level_separators(command)
    if not separators:
        return None
    steps, start = [], 0
    for begin, end in separators:
        steps.append(command[start:begin])
        start = end
    steps.append(command[start:])
    if any(not step.strip() or _is_compound(step) for step in steps):
        return None
    return start


def _top_level_separators(command: str) -> list[tuple[int, int]]:
    """(begin, end) of each `&&` and `;` outside quotes; [] as soon as anything else makes the
    command compound in a way a split cannot handle (a pipe, `||`, `&`, parentheses, `$(...)`,
    backquotes, a newline)."""
    found: list[tuple[int, int]] = []
    quote = ""
    i = 0
    while i < len(command):
        char = command[i]
        if quote:
            if char == "\\" and quote == '"':
                i += 1
            elif char == quote:
                quote = ""
        elif char == "\\":
            i += 1
        elif char in "'\"":
            quote = char
        elif command.startswith("&&", i):
            found.append((i, i + 2))
            i += 1
        elif char == ";" and not command.startswith(";;", i):
            found.append((i, i + 1))
        elif char in "|&()`\n" or command.startswith("$(", i):
            return []
        i += 1
    return found


# Every instance of a type asks about the same command (-c web=1000): lexed once.
@functools.lru_cache(maxsize=256)
def _is_compound(command: str) -> bool:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: let the shell report it
        return True
    words = [t for t in tokens if not _LEADING_ASSIGNMENTS.fullmatch(t + " ")]
    if words[:1] == ["exec"] and _execs_program(words):
        words = words[1:]  # what exec runs is the command
    if not words or words[0] in _SHELL_KEYWORDS or words[0] == "exec":
        return True
    return any(t in _SHELL_OPERATORS for t in tokens) or "`" in command or "$(" in command


def program_of(command: str) -> str | None:
    """The program a simple command runs (after any leading `VAR=value`); None for a compound
    command or one whose program is computed (`$APP_SERVER`), which only the shell can tell."""
    words = command_words(command)
    if not words or "$" in words[0]:
        return None
    return words[0]


def command_words(command: str) -> list[str] | None:
    """The words of a simple command after any leading `VAR=value`, the program first; None for
    a compound command or unbalanced quotes."""
    if _is_compound(command):
        return None
    assignments = _LEADING_ASSIGNMENTS.match(command)
    rest = command[assignments.end() if assignments else 0 :]
    try:
        words = shlex.split(rest)
    except ValueError:
        return None
    return words[1:] if _execs_program(words) else words

"""How a Procfile command runs: through /bin/sh, with `exec` wherever the program can lead.

The program that leads the process group is the one that receives the stop signal, so for a
simple command the shell replaces itself with the program (`exec`). Without exec the shell would
lead: it would receive the stop signal and die, leaving the real program to the SIGKILL at the
deadline.
"""

from __future__ import annotations

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
    if _is_compound(command):
        return (SHELL, "-c", command)
    assignments = _LEADING_ASSIGNMENTS.match(command)
    split = assignments.end() if assignments else 0
    return (SHELL, "-c", f"{command[:split]}exec {command[split:]}")


def _is_compound(command: str) -> bool:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: let the shell report it
        return True
    words = [t for t in tokens if not _LEADING_ASSIGNMENTS.fullmatch(t + " ")]
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
        return shlex.split(rest)
    except ValueError:
        return None

"""A supervisord command as a Procfile command: the same argv, run through /bin/sh.

supervisord runs no shell. It splits the command as Python's shlex.split does (POSIX rules:
quotes group words, a backslash escapes, `#`, `$`, `*`, `&&` and `>` are plain characters) and
executes the words. procrun runs a Procfile command with `/bin/sh -c`, so each word is written
back quoted for sh, which then hands the program exactly the argv supervisord would have.
References to the environment (`%(ENV_PORT)s`) become `${PORT}`, in double quotes where the
original was quoted (one word, whatever the value) and bare where it was not (split on
whitespace, as supervisord split the expanded text; the shell also matches a bare value's `*`,
`?` and `[` against file names, which supervisord never did, and takes a quote in a value as
text, where supervisord, which pastes values in before splitting, took it as quoting).
`sh -c "script"` is unwrapped:
procrun runs the script with /bin/sh itself, and execs its last program, which then leads the
process group.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from procrun.errors import ConfigError
from procrun.importing.environment import double_quoted
from procrun.importing.expansions import EnvRef, Expanded, InstanceNumber, Part, shell_reference
from procrun.project.shell import last_step

_WHITESPACE = " \t\r\n"
_SHELLS = frozenset({"sh", "/bin/sh"})


@dataclass(frozen=True)
class Piece:
    part: Part
    quoted: bool


Word = tuple[Piece, ...]


@dataclass(frozen=True)
class ShellCommand:
    text: str
    """The Procfile command."""
    literal_dollar: bool
    """A word holds a `$` that supervisord passed as it is and sh keeps as it is (quoted)."""
    unwrapped: bool
    """It was `sh -c "script"`, and is the script now."""


def shell_command(parts: Expanded, what: str) -> ShellCommand:
    words = split_words(parts, what)
    if not words:
        raise ConfigError(f"{what} is empty; write the program and its arguments")
    if len(words) == 3 and _text(words[0]) in _SHELLS and _text(words[1]) == "-c":
        script = "".join(
            piece.part if isinstance(piece.part, str) else shell_reference(piece.part)
            for piece in words[2]
        )
        if script.strip():
            return ShellCommand(_without_exec(script.strip()), literal_dollar=False, unwrapped=True)
    dollar = any(
        isinstance(piece.part, str) and ("$" in piece.part or "`" in piece.part)
        for word in words
        for piece in word
    )
    rendered = [_render(word) for word in words]
    if "=" in rendered[0] and rendered[0] == _text(words[0]):
        # supervisord would run a program named `A=b`; sh would read an assignment.
        rendered[0] = f"'{rendered[0]}'"
    return ShellCommand(" ".join(rendered), literal_dollar=dollar, unwrapped=False)


def _without_exec(script: str) -> str:
    """The script without the `exec` of its last step (`migrate && exec gunicorn`): procrun
    puts it there itself, and with it written out the shell would lead throughout."""
    at = script.rfind("exec ")
    if at != 0 and not script[:at].rstrip().endswith(("&&", ";")):
        return script
    program = script[at + len("exec ") :].strip()
    candidate = f"{script[:at]}{program}"
    return candidate if last_step(candidate) == program else script


def split_words(parts: Expanded, what: str) -> list[Word]:
    """The words supervisord would execute, as shlex.split makes them (no comments), each
    piece marked with whether it stood inside quotes."""
    words: list[Word] = []
    word: list[Piece] = []
    in_word = False
    quote = ""  # "", "'" or '"'
    stream = list(_items(parts))
    i = 0
    while i < len(stream):
        item = stream[i]
        i += 1
        if not isinstance(item, str):
            word.append(Piece(item, quoted=bool(quote)))
            in_word = True
            continue
        if quote == "'":
            if item == "'":
                quote = ""
            else:
                word.append(Piece(item, quoted=True))
        elif quote == '"':
            if item == '"':
                quote = ""
            elif item == "\\" and i < len(stream) and stream[i] in ('"', "\\"):
                word.append(Piece(stream[i], quoted=True))
                i += 1
            else:
                word.append(Piece(item, quoted=True))
        elif item in _WHITESPACE:
            if in_word:
                words.append(tuple(word))
                word, in_word = [], False
        elif item in ("'", '"'):
            quote, in_word = item, True
        elif item == "\\":
            if i >= len(stream):
                raise ConfigError(f"{what} ends with a lone backslash; supervisord cannot run it")
            # Before a reference it would escape the value's first character: as good as bare.
            escaped = stream[i]
            word.append(Piece(escaped, quoted=False))
            i += 1
            in_word = True
        else:
            word.append(Piece(item, quoted=False))
            in_word = True
    if quote:
        raise ConfigError(f"{what} has no closing quotation mark ({quote}); close it")
    if in_word:
        words.append(tuple(word))
    return [_joined(w) for w in words]


def _items(parts: Expanded) -> Iterator[str | EnvRef | InstanceNumber]:
    for part in parts:
        if isinstance(part, str):
            yield from part
        else:
            yield part


def _joined(word: Word) -> Word:
    """Adjacent literal characters as one piece."""
    pieces: list[Piece] = []
    for piece in word:
        last = pieces[-1] if pieces else None
        if last is not None and isinstance(last.part, str) and isinstance(piece.part, str):
            pieces[-1] = Piece(last.part + piece.part, quoted=last.quoted or piece.quoted)
        else:
            pieces.append(piece)
    return tuple(pieces)


def _text(word: Word) -> str | None:
    if all(isinstance(piece.part, str) for piece in word):
        return "".join(piece.part for piece in word if isinstance(piece.part, str))
    return None


def _render(word: Word) -> str:
    if not word:
        return "''"
    references = [piece for piece in word if not isinstance(piece.part, str)]
    if references and all(piece.quoted for piece in references):
        # One double-quoted word reads as the original did: "print('on ${HOSTNAME}')".
        return double_quoted(tuple(piece.part for piece in word))
    out = []
    for piece in word:
        if isinstance(piece.part, str):
            out.append(shlex.quote(piece.part))
        elif piece.quoted and isinstance(piece.part, EnvRef):
            out.append(f'"{shell_reference(piece.part)}"')
        else:
            out.append(shell_reference(piece.part))
    return "".join(out)

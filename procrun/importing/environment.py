"""supervisord's `environment=KEY="value",KEY2="value2"`, and where each variable goes.

supervisord expands the whole value, then splits it into KEY=VALUE pairs separated by commas; a
value is quoted with " or ' when it holds anything but letters, digits and `_/.+-():`, and the
quotes are stripped. This parser reads the same pairs (and, more leniently, unquoted values of
other characters), with the references to the environment kept as such.

Where a variable goes: a literal value into procrun.toml's `env`, or, when it looks like a secret
(its name says PASSWORD, SECRET, TOKEN, KEY..., or it is a URL with a password), into `.env`, so
that procrun.toml can be committed and shown; `KEY=%(ENV_KEY)s` nowhere (the real environment
reaches every process anyway); a value that refers to the environment in front of the command,
where the shell expands it (`KEY="${HOME}/data" celery ...`), since procrun.toml's values are
literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from procrun.errors import ConfigError
from procrun.importing.expansions import EnvRef, Expanded, Part, literal_text, shell_reference

_QUOTES = "'\""
_SECRET_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "AUTH", "PRIVATE")
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@")
_NAME = re.compile(r"[^\s=,'\"]+")


@dataclass(frozen=True)
class Variable:
    name: str
    value: Expanded

    @property
    def passes_through(self) -> bool:
        """`KEY=%(ENV_KEY)s`: what the process gets from the real environment anyway."""
        return self.value == (EnvRef(self.name),)

    @property
    def literal(self) -> str | None:
        return literal_text(self.value)

    @property
    def secret(self) -> bool:
        value = self.literal
        if value is None:
            return False
        upper = self.name.upper()
        return any(word in upper for word in _SECRET_WORDS) or bool(
            _URL_WITH_PASSWORD.search(value)
        )

    def assignment(self) -> str:
        """`KEY="${HOME}/data"`: the variable set in front of a command, for /bin/sh."""
        return f"{self.name}={double_quoted(self.value)}"


def double_quoted(value: Expanded) -> str:
    """`"${HOME}/data"`: the value as one word for /bin/sh, its references expanded."""
    text = "".join(
        _in_double_quotes(part) if isinstance(part, str) else shell_reference(part)
        for part in value
    )
    return f'"{text}"'


def parse_environment(parts: Expanded, what: str) -> list[Variable]:
    """The variables of an expanded `environment=` value, in order (a later duplicate wins)."""
    items: list[Part] = [c for part in parts for c in (part if isinstance(part, str) else [part])]
    variables: dict[str, Variable] = {}
    i = _skip_space(items, 0)
    while i < len(items):
        start = i
        while i < len(items) and isinstance(items[i], str) and _NAME.fullmatch(str(items[i])):
            i += 1
        name = "".join(str(item) for item in items[start:i])
        i = _skip_space(items, i)
        if not name or i >= len(items) or items[i] != "=":
            raise _pairs_error(what)
        i = _skip_space(items, i + 1)
        value, i = _value(items, i, what)
        variables.pop(name, None)
        variables[name] = Variable(name, value)
        i = _skip_space(items, i)
        if i < len(items):
            if items[i] != ",":
                raise _pairs_error(what)
            i = _skip_space(items, i + 1)
    return list(variables.values())


def _value(items: list[Part], i: int, what: str) -> tuple[Expanded, int]:
    quote = items[i] if i < len(items) and items[i] in ('"', "'") else None
    if quote is not None:
        i += 1
    collected: list[Part] = []
    while i < len(items):
        item = items[i]
        if quote is not None and item == quote:
            i += 1
            break
        if quote is None and isinstance(item, str) and (item.isspace() or item == ","):
            break
        collected.append(item)
        i += 1
    else:
        if quote is not None:
            raise ConfigError(f"{what}: a value has no closing quotation mark ({quote})")
    return _strip_quotes(_merged(collected)), i


def _merged(items: list[Part]) -> Expanded:
    merged: list[Part] = []
    for item in items:
        if isinstance(item, str) and merged and isinstance(merged[-1], str):
            merged[-1] += item
        else:
            merged.append(item)
    return tuple(merged)


def _strip_quotes(value: Expanded) -> Expanded:
    """As supervisord strips every quote character off both ends of a value."""
    parts = list(value)
    if parts and isinstance(parts[0], str):
        parts[0] = parts[0].lstrip(_QUOTES)
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip(_QUOTES)
    return tuple(part for part in parts if part != "")


def _skip_space(items: list[Part], i: int) -> int:
    while i < len(items) and isinstance(items[i], str) and str(items[i]).isspace():
        i += 1
    return i


def _pairs_error(what: str) -> ConfigError:
    # The value itself is not quoted: it may hold a password.
    return ConfigError(
        f'{what}: expected KEY="value" pairs separated by commas, like A="1",B="two" (quote '
        "values holding other characters than letters, digits and _/.+-():)"
    )


def _in_double_quotes(text: str) -> str:
    return re.sub(r'([\\"$`])', r"\\\1", text)

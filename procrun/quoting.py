"""How a piece of user input is shown inside an error message: printable, of bounded length, and
with the likely intended spelling when it is a near miss."""

from __future__ import annotations

from collections.abc import Iterable

MAX_EXCERPT_CHARS = 80


def one_line(text: str) -> str:
    """`text` with control characters escaped, so an error message stays one line whatever user
    input (a path, a name) it quotes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def excerpt(text: str, limit: int = MAX_EXCERPT_CHARS) -> str:
    """`text` cut to `limit` characters with an ellipsis, control characters escaped.

    Escaping matters because messages go to a terminal: a stray escape sequence in a Procfile must
    not recolour or clear the screen that is showing the error.
    """
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return one_line(text)


def closest(given: str, choices: Iterable[str]) -> str | None:
    """The choice `given` most likely meant to spell, if one is close enough."""
    import difflib  # only on the error path

    close = difflib.get_close_matches(given, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(given: str, choices: Iterable[str]) -> str:
    """`; did you mean "shutdown_timeout"?` for a near miss, else nothing."""
    close = closest(given, choices)
    return f'; did you mean "{close}"?' if close is not None else ""

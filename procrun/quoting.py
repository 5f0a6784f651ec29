"""How a piece of user input is shown inside an error message: printable and of bounded length."""

from __future__ import annotations

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

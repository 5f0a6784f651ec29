"""What a Procfile command runs, recognised from its words, so the program gets defaults that fit.

A Celery worker gets a long grace and a second signal (settings_for), and a readiness default
when it logs at INFO (stackdefaults.py).
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath


def is_celery_worker(name: str, command: str) -> bool:
    """Whether a process type is a Celery worker, which gets a long grace and a second signal.

    True when the type is named `worker` (the Heroku convention), or when the command runs
    celery's `worker` subcommand: some word whose file name is `celery` (`celery`,
    `.venv/bin/celery`, `python -m celery`) is followed by the subcommand `worker`, the first later
    word that is neither an option nor the value of a celery global option (-A/--app,
    -b/--broker, ...). Words holding spaces are searched too, for `sh -c "celery ... worker"`.
    So `celery -A proj worker -l info` and `newrelic-admin run-program celery worker` are workers;
    `celery beat`, `celery flower` and `celery -A worker beat` are not.
    """
    return name == "worker" or runs_celery_worker(command)


_CELERY_OPTIONS_WITH_VALUE = frozenset(
    {"-A", "--app", "-b", "--broker", "--result-backend", "--loader", "--config", "--workdir"}
)


def runs_celery_worker(command: str) -> bool:
    """Whether the command itself runs celery's `worker` subcommand (the name aside)."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: the shell will complain, but still guess the intent
        words = command.split()
    for i, word in enumerate(words):
        if not word.startswith("-") and PurePosixPath(word).name == "celery":
            if _celery_subcommand(words[i + 1 :]) == "worker":
                return True
        elif word != command and any(c.isspace() for c in word) and runs_celery_worker(word):
            return True
    return False


def _celery_subcommand(words: list[str]) -> str | None:
    takes_value = False
    for word in words:
        if takes_value:
            takes_value = False
        elif word in _CELERY_OPTIONS_WITH_VALUE:
            takes_value = True
        elif not word.startswith("-"):
            return word
    return None


def celery_node_name_warning(kind: str, command: str, count: int) -> str | None:
    """Several instances of a Celery worker with no -n/--hostname all call themselves
    `celery@<host>`: Flower and `celery inspect` see one worker (DuplicateNodenameWarning)."""
    if count < 2 or not runs_celery_worker(command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if any(w in ("-n", "--hostname") or w.startswith(("-n", "--hostname=")) for w in words):
        return None
    return (
        f"{kind}: {count} Celery workers with the same node name (celery@<host>): add "
        f"-n %n-${{PS}}@%h to the command so that each has its own"
    )

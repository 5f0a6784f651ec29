"""Flower, the Celery dashboard, never open: `python -m service.flower [flower options]`.

Flower reads its options from FLOWER_* variables itself (flower/command.py, apply_env_options):
FLOWER_BASIC_AUTH (`user:password`, several comma-separated), FLOWER_PORT, FLOWER_ADDRESS. Left
without FLOWER_BASIC_AUTH it serves the dashboard, and with it the power to shut workers down and
revoke tasks, to anyone who reaches the port. So this checks the variable first, with nothing
heavier than the standard library imported, and only then becomes Flower (exec: the same pid, so
procrun's stop signal reaches Flower itself). The credentials stay in the environment: never on
the command line, where `ps` would show them, and never printed. Flower binds loopback unless
FLOWER_ADDRESS says otherwise (Flower's own default is every interface); the image sets 0.0.0.0.

Refused, it says why in one line and exits 78 (sysexits' EX_CONFIG) before anything else runs:
procrun treats an exit 78 at once as a configuration error and gives up on it instead of
restarting it over and over (a restart cannot set a variable). Its exit code becomes procrun's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

EXIT_REFUSED = 78  # EX_CONFIG
DEFAULT_ADDRESS = "127.0.0.1"
USAGE = "set FLOWER_BASIC_AUTH=user:password (several: user1:pw1,user2:pw2)"


def basic_auth_problem(value: str | None) -> str | None:
    """Why `value` cannot protect Flower, or None when it can. Never quotes the value."""
    if not value:
        return "FLOWER_BASIC_AUTH is not set"
    for number, entry in enumerate(value.split(","), start=1):
        user, colon, password = entry.partition(":")
        if not (colon and user and password):
            return f"entry {number} of FLOWER_BASIC_AUTH is not user:password"
    return None


def flower_argv(options: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "service.tasks", "flower", *options]


def main(options: Sequence[str]) -> NoReturn:
    problem = basic_auth_problem(os.environ.get("FLOWER_BASIC_AUTH"))
    if problem is not None:
        print(f"flower: refusing to start: {problem}; {USAGE}", file=sys.stderr, flush=True)
        sys.exit(EXIT_REFUSED)
    if not os.environ.get("FLOWER_ADDRESS"):  # unset or empty
        os.environ["FLOWER_ADDRESS"] = DEFAULT_ADDRESS
    argv = flower_argv(options)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])

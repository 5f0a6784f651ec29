"""procrun's own exceptions and every exit code it uses: one funnel, caught once in the CLI,
turned into a line and a code.

Exit codes of `procrun start` beyond these are a child's own (see the README's table): the status
of the process whose exit stopped procrun, or 128+N for a signal."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from procrun.quoting import one_line

EXIT_OK = 0
EXIT_FAILURE = 1
"""A ProcrunError without a code of its own; also the exit of a stop in which a kill was denied."""
EXIT_STOP_DENIED = EXIT_FAILURE
EXIT_USAGE = 2
"""Bad input: a Procfile, procrun.toml, .env or command line procrun cannot use."""
EXIT_UNHEALTHY = 3
"""`procrun status`: something is not running, as `supervisorctl status` and LSB `status` say."""
EXIT_NO_SUPERVISOR = 4
"""A client command found no supervisor to talk to."""
EXIT_INTERRUPTED = 130
"""A Ctrl-C before procrun has installed its own signal handlers."""


class ProcrunError(Exception):
    """An error procrun reports as one line, without a traceback; `details` (a list of sockets,
    of files) follow it on lines of their own."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, *, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = tuple(details)


class ConfigError(ProcrunError):
    """Bad input in a file; the message names the file, the line and the fix."""

    exit_code = EXIT_USAGE


class UsageError(ProcrunError):
    """Bad input on the command line (unknown process name, bad -c value, ...)."""

    exit_code = EXIT_USAGE


def exit_with(error: ProcrunError) -> NoReturn:
    """The end of the funnel: the error as one line on stderr, and its exit code."""
    lines = [f"procrun: {one_line(str(error))}", *(f"  {one_line(d)}" for d in error.details)]
    sys.stderr.write("".join(f"{line}\n" for line in lines))
    sys.exit(error.exit_code)

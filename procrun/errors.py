"""procrun's own exceptions: one funnel, caught once in the CLI, turned into a line and a code."""

from __future__ import annotations

import sys
from typing import NoReturn

from procrun.quoting import one_line

EXIT_USAGE = 2
"""Exit code for bad input: a Procfile, procrun.toml, .env or command line procrun cannot use."""


class ProcrunError(Exception):
    """An error procrun reports as one line, without a traceback."""

    exit_code: int = 1


class ConfigError(ProcrunError):
    """Bad input in a file; the message names the file, the line and the fix."""

    exit_code = EXIT_USAGE


class UsageError(ProcrunError):
    """Bad input on the command line (unknown process name, bad -c value, ...)."""

    exit_code = EXIT_USAGE


EXIT_INTERRUPTED = 130
"""Exit code for a Ctrl-C before procrun has installed its own signal handlers."""


def exit_with(error: ProcrunError) -> NoReturn:
    """The end of the funnel: the error as one line on stderr, and its exit code."""
    sys.stderr.write(f"procrun: {one_line(str(error))}\n")
    sys.exit(error.exit_code)

"""procrun's own exceptions: one funnel, caught once in the CLI, turned into a line and a code."""

from __future__ import annotations

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

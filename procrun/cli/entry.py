"""The `procrun` command's entry point. A plain `procrun status`, which a Docker HEALTHCHECK runs
every few seconds, is answered without importing click, about half of its start-up time;
everything else goes to the click CLI (procrun/cli/main.py)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from procrun.cli.client import show_status
from procrun.errors import EXIT_INTERRUPTED, ProcrunError, exit_with


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if _plain_status(args):
        names = tuple(a for a in args[1:] if a != "--json")
        try:
            code = show_status(None, None, "--json" in args, names)
        except ProcrunError as error:
            exit_with(error)
        except KeyboardInterrupt:
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code)
    from procrun.cli.main import main as cli_main

    cli_main(args)


def _plain_status(args: Sequence[str]) -> bool:
    """`status`, maybe `--json`, maybe process names: the forms whose meaning needs no parser.
    Any other option (--socket, -d, --help, --) is click's to read."""
    return (
        bool(args)
        and args[0] == "status"
        and all(a == "--json" or not a.startswith("-") for a in args[1:])
    )

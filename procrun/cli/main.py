"""The command line: the click group, `start` and `check`. With entry.py (which answers a plain
`procrun status` without click), the only module that exits the interpreter: every ProcrunError
ends here as one line on stderr and its exit code, never a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import click

from procrun import __version__
from procrun.cli.export import export_command
from procrun.cli.importing import import_group
from procrun.cli.oneoff import run_command
from procrun.cli.remote import COMMANDS, socket_option, start_running
from procrun.errors import EXIT_INTERRUPTED, ProcrunError, UsageError, exit_with
from procrun.quoting import excerpt

if TYPE_CHECKING:
    from procrun.project.loader import ProjectOptions

# Heavier modules (asyncio, structlog, the config parsers) are imported inside the commands that
# need them: `procrun status` in a HEALTHCHECK runs every few seconds and must start fast.
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class SupervisorExit:
    """What `start` returns after running a supervisor: main() may skip interpreter teardown."""

    code: int


def _parse_concurrency(values: Sequence[str]) -> dict[str, int]:
    """`-c worker=2 -c web=1` or foreman's `-c web=1,worker=2`."""
    counts: dict[str, int] = {}
    for value in values:
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, number = item.partition("=")
            if not sep or not name or not number.strip().isdigit():
                raise UsageError(
                    f'-c/--concurrency: expected "<name>=<count>", got "{excerpt(item)}"'
                )
            counts[name.strip()] = int(number)
    return counts


class _PathList(click.Path):
    """A repeatable path, or a list in its variable (`a:b`, as PATH), empty items dropped."""

    def split_envvar_value(self, rv: str) -> Sequence[str]:
        return [part for part in super().split_envvar_value(rv) if part]


project_options = [
    click.option(
        "-f",
        "--procfile",
        "procfiles",
        type=_PathList(path_type=Path, dir_okay=False),
        multiple=True,
        default=[Path("Procfile")],
        envvar="PROCRUN_PROCFILE",
        help="The Procfile to run [default: Procfile]; again to merge an overlay on top "
        "(-f Procfile -f Procfile.dev). PROCRUN_PROCFILE: a list separated by ':'.",
    ),
    click.option(
        "-d",
        "--root",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Project directory for .env, procrun.toml and working dirs [default: the Procfile's].",
    ),
    click.option(
        "-e",
        "--env",
        "env_files",
        type=click.Path(path_type=Path, dir_okay=False),
        multiple=True,
        help="A .env file to load (repeatable) [default: .env in the project directory].",
    ),
    click.option(
        "--config",
        "configs",
        type=_PathList(path_type=Path, dir_okay=False),
        multiple=True,
        envvar="PROCRUN_CONFIG",
        help="Settings file [default: procrun.toml, else [tool.procrun] in pyproject.toml]; "
        "again to merge an overlay on top. PROCRUN_CONFIG: a list separated by ':'.",
    ),
    click.option(
        "-c",
        "--concurrency",
        multiple=True,
        metavar="NAME=N",
        help="Instances of a process type, e.g. -c worker=2 (repeatable, or web=1,worker=2).",
    ),
    click.option(
        "--shutdown-timeout",
        envvar="PROCRUN_SHUTDOWN_TIMEOUT",
        default=None,
        metavar="DURATION",
        help="A shutdown's deadline: every stop's SIGKILL comes by then, a stop already under "
        "way included (set it to your platform's SIGKILL deadline minus a margin), e.g. 25s.",
    ),
    click.option(
        "--platform-deadline",
        envvar="PROCRUN_PLATFORM_DEADLINE",
        default=None,
        metavar="DURATION",
        help="When the platform SIGKILLs after its SIGTERM (Render's maxShutdownDelaySeconds, "
        "docker stop -t), for the deadline warnings; default: the detected platform's default.",
    ),
    click.option(
        "-p",
        "--port",
        "base_port",
        type=click.IntRange(1, 65535),
        default=5000,
        show_default=True,
        help="Base for PORT when the environment does not set it (foreman style).",
    ),
]


def with_project_options(function: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(project_options):
        function = option(function)
    return function


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="procrun")
def cli() -> None:
    """Run the processes of a Procfile: one process group each, graceful stops, restarts with
    backoff, one interleaved log stream on stdout."""


@cli.command()
@with_project_options
@click.option("--no-release", is_flag=True, help="Do not run the Procfile's release entry first.")
@click.option(
    "--no-restart",
    is_flag=True,
    envvar="PROCRUN_NO_RESTART",
    help="Restart nothing that exits (development: a crash stays on screen); with on_give_up = "
    '"continue" the others keep running.',
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default=None,
    envvar="PROCRUN_LOG_FORMAT",
    help="procrun's own events: readable text, or one JSON object per line [default: as "
    "--output-format, so the stream is one format].",
)
@click.option(
    "--output-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="PROCRUN_OUTPUT_FORMAT",
    show_default=True,
    help="Child lines: prefixed text, or one JSON object per line with the process name.",
)
@click.option("-t", "--timestamps", is_flag=True, help="Prefix every line with the time.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Also log state changes and reaped orphans (debug)."
)
@click.option(
    "--watch",
    is_flag=True,
    envvar="PROCRUN_WATCH",
    help="Development: restart each process whose watch = [...] files change (procrun.toml).",
)
@click.option(
    "--watch-debounce",
    default="100ms",
    show_default=True,
    envvar="PROCRUN_WATCH_DEBOUNCE",
    metavar="DURATION",
    help="With --watch: changes within this window are one restart.",
)
@socket_option
@click.argument("names", nargs=-1)
def start(
    names: tuple[str, ...],
    no_release: bool,
    no_restart: bool,
    log_format: str | None,
    output_format: str,
    timestamps: bool,
    verbose: bool,
    watch: bool,
    watch_debounce: str,
    socket: str | None,
    **project: Any,
) -> int | SupervisorExit:
    """Start the Procfile's processes (or only NAMES) and supervise them until stopped.

    While this project's supervisor is running, `procrun start NAMES` asks it to start those
    processes (after `procrun stop NAMES`) instead.
    """
    first = next(iter(project["procfiles"]), Path("Procfile"))  # PROCRUN_PROCFILE may be ":"
    root = (project["root"] or first.parent).resolve()
    if names and _supervisor_running(socket, root):
        return start_running(socket, root, names)

    asyncio = _import_asyncio_without_ssl()

    from procrun.cli.runner import StartOptions, run_start
    from procrun.output.eventlog import LogFormat
    from procrun.project.values import parse_duration

    debounce = parse_duration(watch_debounce, "--watch-debounce / PROCRUN_WATCH_DEBOUNCE")
    options = StartOptions(
        _project_options(project, only=names, run_release=not no_release, no_restart=no_restart),
        log_format=LogFormat(log_format or output_format),
        json_output=output_format == "json",
        timestamps=timestamps,
        verbose=verbose,
        socket=socket,
        watch=watch,
        watch_debounce_seconds=debounce,
    )
    return SupervisorExit(asyncio.run(run_start(options)))


def _import_asyncio_without_ssl() -> ModuleType:
    """asyncio imports ssl only to offer TLS transports, which the supervisor never uses, and
    OpenSSL would stay mapped for the container's whole life (~1 MiB of RSS); asyncio treats a
    missing ssl as "no TLS". The block is lifted once asyncio is in, so nothing else is affected."""
    blocked = "ssl" not in sys.modules
    if blocked:
        sys.modules["ssl"] = None  # type: ignore[assignment]  # import ssl -> ImportError
    try:
        import asyncio
    finally:
        if blocked:
            del sys.modules["ssl"]
    return asyncio


@cli.command()
@with_project_options
@click.argument("names", nargs=-1)
def check(names: tuple[str, ...], **project: Any) -> int:
    """Validate the Procfile and settings, print the resolved formation, warn about deadlines."""
    from procrun.project.loader import load_project

    loaded = load_project(_project_options(project, only=names), dict(os.environ))
    for line in loaded.describe():
        click.echo(line)
    return 0


def _project_options(project: dict[str, Any], **options: Any) -> ProjectOptions:
    """ProjectOptions from the shared project options (see `project_options`) plus the command's."""
    from procrun.project.loader import ProjectOptions

    counts = _parse_concurrency(project.pop("concurrency"))
    return ProjectOptions(**project, counts=counts, **options)


def _supervisor_running(socket: str | None, root: Path) -> bool:
    """Whether this project's own supervisor answers (not any other project's)."""
    from procrun.control.client import probe
    from procrun.control.paths import explicit_socket, project_socket_path, socket_directory

    info = probe(explicit_socket(socket) or project_socket_path(socket_directory(), root))
    return info is not None and "problem" not in info


for command in COMMANDS:
    cli.add_command(command)
cli.add_command(run_command(with_project_options, _project_options))
cli.add_command(export_command(with_project_options, _project_options))
cli.add_command(import_group)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        result = cli.main(args=argv, prog_name="procrun", standalone_mode=False)
    except ProcrunError as error:
        exit_with(error)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (KeyboardInterrupt, click.Abort):
        sys.exit(EXIT_INTERRUPTED)
    if isinstance(result, SupervisorExit):
        # Every child is stopped and stdout flushed: skip the interpreter's teardown (a final
        # garbage collection and hundreds of module deallocations, ~25 ms) so that a platform
        # waiting for procrun to exit is not kept waiting.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result.code)
    sys.exit(result if isinstance(result, int) else 0)

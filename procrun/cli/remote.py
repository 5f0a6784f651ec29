"""The commands that talk to a running `procrun start` over its control socket.

Each is a thin client: find the socket, send one request, print the answer. They import nothing
heavy (no asyncio, no structlog, no psutil), so `procrun status` answers in a few tens of ms.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from procrun.cli.client import ask, show_status, supervisor_socket
from procrun.control.client import call_stream
from procrun.errors import UsageError
from procrun.project.values import parse_duration
from procrun.quoting import excerpt

socket_option = click.option(
    "--socket",
    envvar="PROCRUN_SOCKET",
    default=None,
    metavar="PATH",
    help="The supervisor's control socket [default: found from the project directory].",
)
root_option = click.option(
    "-d",
    "--root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Project directory whose supervisor to ask [default: the nearest directory from here "
    "upwards that holds a Procfile; without one, the only supervisor running].",
)


def client_options(function: Callable[..., Any]) -> Callable[..., Any]:
    return socket_option(root_option(function))


@click.command()
@client_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option(
    "--wait", is_flag=True, help="Answer once every process is ready (or --timeout has passed)."
)
@click.option(
    "--timeout",
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="With --wait: how long to wait for readiness, e.g. 90s or 2m.",
)
@click.argument("names", nargs=-1)
def status(
    socket: str | None,
    root: Path | None,
    as_json: bool,
    wait: bool,
    timeout: str,
    names: tuple[str, ...],
) -> int:
    """Show every process (or NAMES): state, pid, uptime, restarts, last exit, memory, CPU, and
    what a process not ready yet waits for.

    Exit code 0 when every long-running process is RUNNING, which means ready (its readiness
    probe passed, or up for min_uptime without one; one-shots that exited 0 count as fine), 3
    when any is not, 4 when no supervisor answers: fit for a Docker HEALTHCHECK. --wait blocks
    until the formation is ready, for scripts and CI.
    """
    seconds = parse_duration(timeout, "--timeout") if wait else None
    return show_status(socket, root, as_json, names, wait=seconds)


def _acting(verb: str, past: str, help_text: str) -> click.Command:
    @click.command(name=verb, help=help_text)
    @client_options
    @click.argument("names", nargs=-1, required=True)
    def command(socket: str | None, root: Path | None, names: tuple[str, ...]) -> int:
        # No timeout: a graceful stop may take a whole grace period (10 min for a worker).
        result = ask(socket, root, {"verb": verb, "names": list(names)}, timeout=None)
        _report(result, past)
        return 0

    return command


stop = _acting(
    "stop",
    "stopped",
    "Stop NAMES (a type such as `worker`, or an instance such as `worker.2`) with their own "
    "stop sequence; they stay stopped until `procrun start NAMES`.",
)
restart = _acting(
    "restart", "restarted", "Stop NAMES gracefully with their own stop sequence, then start them."
)


def start_running(socket: str | None, root: Path | None, names: tuple[str, ...]) -> int:
    """`procrun start NAMES` while this project's supervisor runs: start them there."""
    result = ask(socket, root, {"verb": "start", "names": list(names)}, timeout=None)
    _report(result, "started")
    return 0


def _report(result: dict[str, Any], past: str) -> None:
    """One line per instance acted on, naming the project: never a doubt about which one."""
    where = result.get("project_dir", "?")
    for name in result["processes"]:
        click.echo(f"{name}: {past} ({where})")
    for name in result.get("already_running", []):
        click.echo(f"{name}: already running ({where})")


@click.command(name="signal")
@client_options
@click.option("--group", is_flag=True, help="Signal the whole process group, not the main pid.")
@click.argument("name")
@click.argument("signal_name", metavar="SIGNAL")
def send_signal(
    socket: str | None, root: Path | None, group: bool, name: str, signal_name: str
) -> int:
    """Send SIGNAL (USR1, HUP, 10...) to NAME's main pid, e.g. USR1 makes Celery dump tracebacks."""
    payload = {"verb": "signal", "names": [name], "signal": signal_name, "group": group}
    result = ask(socket, root, payload, timeout=5.0)
    for line in result["results"]:
        click.echo(line)
    return 0


@click.command()
@client_options
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they come.")
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(0, 10_000),
    default=100,
    show_default=True,
    help="How many recent lines to print first.",
)
@click.argument("names", nargs=-1)
def logs(
    socket: str | None, root: Path | None, follow: bool, lines: int, names: tuple[str, ...]
) -> int:
    """Print recent output of every process (or NAMES) from procrun's memory; -f to follow."""
    payload = {"verb": "logs", "names": list(names), "lines": lines, "follow": follow}
    if not follow:
        result = ask(socket, root, payload, timeout=5.0)
        _print_lines(result["lines"])
        return 0
    path = supervisor_socket(socket, root)
    width = 0
    for item in call_stream(path, payload, timeout=None):
        width = max(width, len(item["process"]))
        click.echo(f"{item['process'].ljust(width)} | {item['line']}")
    return 0


def _print_lines(items: list[dict[str, str]]) -> None:
    width = max((len(item["process"]) for item in items), default=0)
    for item in items:
        click.echo(f"{item['process'].ljust(width)} | {item['line']}")


@click.command()
@client_options
@click.option(
    "--force",
    is_flag=True,
    help="As a second Ctrl-C: each process gets its last signal now (QUIT for a Celery worker, "
    "which requeues its tasks), then SIGKILL a few seconds later.",
)
def shutdown(socket: str | None, root: Path | None, force: bool) -> int:
    """Stop every process (each with its own stop sequence) and the supervisor itself."""
    ask(socket, root, {"verb": "shutdown", "force": force}, timeout=5.0)
    click.echo("forced shutdown requested" if force else "shutdown requested")
    return 0


@click.command()
@client_options
@click.argument("counts", nargs=-1, required=True, metavar="NAME=N...")
def scale(socket: str | None, root: Path | None, counts: tuple[str, ...]) -> int:
    """Run N instances of each process type NAME, e.g. `procrun scale worker=3 web=1`.

    New instances get PS and PORT as `start -c worker=3` would have given them. Scaling down
    stops the highest-numbered instances, each with its own stop sequence and grace (a Celery
    worker: TERM, then QUIT), answers once they have stopped, and then `status` no longer lists
    them; 0 is allowed. The new counts last until procrun stops: to keep them, set -c or `count`
    in procrun.toml. `release` runs only at start.
    """
    payload = {"verb": "scale", "counts": _parse_counts(counts)}
    # No timeout: a scale-down waits for graceful stops (up to 10 min for a Celery worker).
    result = ask(socket, root, payload, timeout=None)
    where = result.get("project_dir", "?")
    for change in result["scaled"]:
        done = [
            f"{verb} {', '.join(names)}"
            for verb, names in (("started", change["started"]), ("stopped", change["stopped"]))
            if names
        ]
        what = "; ".join(done) or "unchanged"
        click.echo(f"{change['type']}: {change['before']} -> {change['after']} ({what}) ({where})")
    if any(change["started"] or change["stopped"] for change in result["scaled"]):
        click.echo(
            "these counts last until procrun stops (to keep them: -c, or count in procrun.toml)"
        )
    return 0


def _parse_counts(items: tuple[str, ...]) -> dict[str, int]:
    """`worker=3 web=1` -> {"worker": 3, "web": 1}; a bad one is a UsageError (exit 2) here,
    before the supervisor is asked, with the message the supervisor would give."""
    from procrun.control.requests import scale_problem  # not for every client command: ~80 ms

    counts: dict[str, int] = {}
    for item in items:
        kind, sep, number = (part.strip() for part in item.partition("="))
        if not sep:
            raise UsageError(
                f'scale: expected "<type>=<count>", e.g. worker=3, got "{excerpt(item)}"'
            )
        if kind in counts:
            raise UsageError(f'scale: "{excerpt(kind)}" is given twice')
        count = int(number) if re.fullmatch(r"-?[0-9]{1,18}", number) else None
        problem = scale_problem(kind, number if count is None else count)
        if problem is not None or count is None:
            raise UsageError(f"scale: {problem}")
        counts[kind] = count
    return counts


COMMANDS = (status, stop, restart, send_signal, logs, shutdown, scale)

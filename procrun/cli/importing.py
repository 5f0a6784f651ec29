"""`procrun import supervisord FILE [-o DIR]`: another supervisor's configuration, written as a
Procfile and a procrun.toml (procrun/importing/). What has no equivalent is said on stderr, one
line each (`dropped:`, `note:`, `warning:`); the paths written go to stdout."""

from __future__ import annotations

import os
from pathlib import Path

import click

SUPERVISORD_HELP = """Read FILE, a supervisord.conf (with the files its [include] names), and
write a Procfile and a procrun.toml into DIR: a Procfile entry per [program:x] in supervisord's
start order, and its settings (restart policy, grace, stop signal, count, cwd, env...) with the
key each comes from. Values that look like secrets (PASSWORD, SECRET, TOKEN, KEY... in the name,
a URL with a password) go to DIR/.env instead, and only their names are printed.

Every key or section with no equivalent is listed on stderr with the reason. Existing files are
never overwritten without --force. Then run `procrun check` in DIR.
"""


@click.group("import")
def import_group() -> None:
    """Write a Procfile and a procrun.toml from another supervisor's configuration."""


@import_group.command(
    "supervisord",
    help=SUPERVISORD_HELP,
    short_help="A supervisord.conf as a Procfile and a procrun.toml (secrets in .env).",
)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="The directory to write Procfile, procrun.toml and .env into (created if missing).",
)
@click.option("--force", is_flag=True, help="Overwrite Procfile, procrun.toml and .env in DIR.")
def supervisord(file: Path, output: Path, force: bool) -> int:
    from procrun.importing.supervisordconf import read_conf
    from procrun.importing.translate import translate
    from procrun.importing.writer import render, write

    imported = translate(read_conf(file, dict(os.environ)), output)
    written = write(render(imported), output, force=force)
    for message in imported.messages:
        click.echo(str(message), err=True)
    for path in written:
        click.echo(f"wrote {path}")
    return 0

"""`procrun export FORMAT`: the project `start` would run, as units of another scheduler
(procrun/export/). It reads the project exactly as `start` does, through the CLI's shared
project options, so the same files, overlays, validation and file:line errors apply."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from procrun.project.loader import ProjectOptions

_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

HELP = """Write the Procfile's process types as units of FORMAT: kubernetes (a Deployment per
type), compose (a service per type), systemd (a target and a template unit per type) or render
(a Blueprint). Every unit runs `procrun start TYPE`, so procrun stays the supervisor inside it,
with each type's grace, stop sequence and readiness carried into the platform's terms. NAMEs
export only those types; -c sets the number of each (replicas, instances).

The platform's SIGKILL comes 10 s after procrun's own at the type's grace. --shutdown-timeout
caps every unit's deadline; procrun.toml's shutdown_timeout does only on Render, whose limit
(300 s) is fixed.

Without -o, kubernetes, compose and render print their YAML to stdout; with -o DIR every file
goes into DIR and its path is printed. systemd writes several files and needs -o. What a
platform cannot express is printed as a `note:` line on stderr. Values from .env are never
written: Kubernetes reads secrets from the Secret <app>-env, Compose and systemd refer to .env.
"""


def export_command(
    with_project_options: _Decorator, project_options: Callable[..., ProjectOptions]
) -> click.Command:
    """The `export` command, given the CLI's shared project options and how they become
    ProjectOptions (procrun/cli/main.py)."""

    @click.command("export", help=HELP)
    @with_project_options
    @click.option(
        "-o",
        "--output",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Write the files into this directory (created if missing) [default: stdout; "
        "systemd needs it].",
    )
    @click.option("--image", default=None, help="The image every unit runs (kubernetes, compose).")
    @click.option(
        "--app",
        default=None,
        help="The prefix of every name (procrun-web, procrun.target) [default: the project's "
        "name in pyproject.toml, else its directory's].",
    )
    @click.option(
        "--user",
        default=None,
        help="kubernetes: runAsUser UID[:GID] [default: the Dockerfile's USER, else 10001]; "
        "systemd: User= [default: the project directory's owner].",
    )
    @click.option(
        "--procrun",
        "procrun_path",
        default=None,
        metavar="PATH",
        help="systemd: the procrun ExecStart runs [default: the one beside this Python, else "
        "the one on PATH].",
    )
    @click.option(
        "--blueprint",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="render: the Blueprint the other services and every service's settings come "
        "from [default: render.yaml in the project, if any].",
    )
    @click.argument("format_name", metavar="FORMAT")
    @click.argument("names", nargs=-1)
    def export(
        format_name: str,
        names: tuple[str, ...],
        output: Path | None,
        image: str | None,
        app: str | None,
        user: str | None,
        procrun_path: str | None,
        blueprint: Path | None,
        **project: Any,
    ) -> int:
        from procrun.export.formats import choose, write
        from procrun.export.units import ExportOptions, build_export
        from procrun.project.loader import load_project

        chosen = choose(format_name, image)
        env_files = tuple(project["env_files"])
        explicit_timeout = project["shutdown_timeout"] is not None
        options = ExportOptions(
            image=image,
            app=app,
            user=user,
            procrun=procrun_path,
            blueprint=blueprint,
            output=output,
            base_port=project["base_port"],
            env_files=env_files,
        )
        # The programs run in the image or on the target host, not here: not looked up.
        loaded = load_project(
            project_options(project, only=names, check_programs=False), dict(os.environ)
        )
        cap = loaded.shutdown_timeout if explicit_timeout else None
        generated = chosen.generate(build_export(loaded, options, cap))
        stream, written = write(generated, output, chosen.name)
        if stream is not None:
            click.echo(stream, nl=False)
        for path in written:
            click.echo(f"wrote {path}")
        for note in generated.notes:
            click.echo(f"note: {chosen.name}: {note}", err=True)
        return 0

    return export

"""The export formats by name, what each requires, and where the generated files go: the one
file of kubernetes, compose and render to stdout, or every file into -o DIR (systemd's several
files always)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from procrun.errors import UsageError
from procrun.export import compose, kubernetes, render, systemd
from procrun.export.units import Export
from procrun.export.yamltext import Generated
from procrun.quoting import did_you_mean, excerpt


@dataclass(frozen=True)
class Format:
    name: str
    generate: Callable[[Export], Generated]
    needs_image: bool = False


FORMATS = {
    f.name: f
    for f in (
        Format("kubernetes", kubernetes.generate, needs_image=True),
        Format("compose", compose.generate, needs_image=True),
        Format("systemd", systemd.generate),
        Format("render", render.generate),
    )
}


def choose(name: str, image: str | None) -> Format:
    """The format named, checked against the options it needs, before the project is read."""
    chosen = FORMATS.get(name)
    if chosen is None:
        raise UsageError(
            f'unknown export format "{excerpt(name)}"{did_you_mean(name, FORMATS)}; '
            f"formats: {', '.join(FORMATS)}"
        )
    if chosen.needs_image and not image:
        raise UsageError(
            f"export {name}: --image is required: the image every unit runs, built from the "
            "project's Dockerfile (e.g. --image registry.example.com/app:1.0)"
        )
    return chosen


def write(generated: Generated, output: Path | None, name: str) -> tuple[str | None, list[Path]]:
    """Into `output` (created if missing): the paths written. Without it: the text for stdout,
    where the format has one."""
    if output is None:
        if generated.stream is None:
            raise UsageError(
                f"export {name} writes {len(generated.files)} files: give -o DIR "
                "(e.g. -o deploy/systemd)"
            )
        return generated.stream, []
    try:
        output.mkdir(parents=True, exist_ok=True)
        written = []
        for file in generated.files:
            path = output / file.name
            path.write_text(file.text)
            written.append(path)
    except OSError as error:
        raise UsageError(f"-o/--output: {error.filename}: {error.strerror}") from None
    return None, written

"""The FastAPI example's image without a Docker engine, with the reference image's tools: its
Dockerfile read by tests/app/dockerfile.py, and its CMD run by tests/app/container.py as PID 1 of
a PID namespace, as the image's user, in a root put together from the Dockerfile with the
repository root as the build context (and its .dockerignore)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.app.container import Container, ImageRoot, build_root, descendants, uid_of
from tests.app.dockerfile import Image, context_files, parse_dockerfile, parse_dockerignore
from tests.app.formation import REPO
from tests.examples.fastapi_formation import EXAMPLE, JOB_DEADLINE_SECONDS
from tests.harness import wait_until_dead

DOCKERFILE = EXAMPLE / "Dockerfile"
# What the Procfile and its overlay run, and procrun's own sources for `pip install .`.
NEEDED = frozenset({"service", "Procfile", "Procfile.gunicorn", "procrun.toml", "procrun"})
SECRET_LOOKING = re.compile(r"AUTH|PASSWORD|SECRET|TOKEN|REDIS_URL")


def load_image() -> Image:
    return Image(parse_dockerfile(DOCKERFILE.read_text()))


def check_image(image: Image) -> None:
    """Every COPY source is in the build context and what the Procfile runs is copied; a fixed
    non-root user; procrun as CMD in exec form, `procrun status` as HEALTHCHECK; Flower on every
    interface of the container; no secret among the ENV names."""
    ignore = parse_dockerignore((REPO / ".dockerignore").read_text())
    copied: set[str] = set()
    for instruction, sources, _ in image.copies():
        for source in sources:
            assert context_files(REPO, ignore, source), f"{instruction}: {source} not in context"
            copied.add(Path(source).name)
    assert copied >= NEEDED, NEEDED - copied
    assert 0 not in image.user
    assert image.one("CMD").exec_form() == ["procrun", "start"]
    assert "procrun status" in " ".join(image.healthcheck()[1])
    assert image.env["FLOWER_ADDRESS"] == "0.0.0.0"
    assert [name for name in image.env if SECRET_LOOKING.search(name)] == []


@dataclass
class RunningImage:
    container: Container
    root: ImageRoot
    pid1: int

    def processes(self) -> list[int]:
        return [self.pid1, *descendants(self.pid1)]

    def healthcheck(self, image: Image) -> int:
        """The image's HEALTHCHECK, run as `docker exec` would."""
        argv = self.container.exec(*image.healthcheck()[1])
        return subprocess.run(argv, timeout=JOB_DEADLINE_SECONDS, check=False).returncode

    def stop(self) -> str:
        """SIGTERM to PID 1: it exits 0 and everything it started is gone; its output."""
        processes = self.processes()
        os.kill(self.pid1, signal.SIGTERM)
        assert self.container.proc.wait(JOB_DEADLINE_SECONDS) == 0, self.container.rest()
        for pid in processes:
            wait_until_dead(pid, timeout=5)
        return self.container.rest()


@contextmanager
def running(image: Image, platform: Mapping[str, str]) -> Iterator[RunningImage]:
    """The image's CMD as PID 1 with `platform`'s variables, once web, worker and Flower are
    ready, all as the image's user."""
    ignore = parse_dockerignore((REPO / ".dockerignore").read_text())
    root = build_root(image, REPO, ignore, platform)
    container = Container(root, image.one("CMD").exec_form() or [])
    try:
        run = RunningImage(container, root, container.pid1())
        for instance in ("web.1", "worker.1", "flower.1"):
            container.wait_for_line(rf"process\.ready .*process={instance}\b")
        assert {uid_of(pid) for pid in run.processes()} == {root.uid}
        yield run
    finally:
        container.close()
        shutil.rmtree(root.path, ignore_errors=True)

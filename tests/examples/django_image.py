"""The Django example's Dockerfile, read with the reference image's parser (tests/app/dockerfile.py)
and run without a Docker engine as the reference image is (tests/app/container.py): its CMD as
PID 1 of a PID namespace, as the image's user, in a root put together from the Dockerfile, with
the repository root as the build context and its .dockerignore."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.app.container import uid_of
from tests.app.dockerfile import IgnoreRule, Image, context_files, parse_dockerfile
from tests.app.formation import REPO
from tests.app.test_dockerfile import SECRET_NAME, URL_CREDENTIALS, option_value
from tests.examples.django_site import EXAMPLE

DOCKERFILE = EXAMPLE / "Dockerfile"
SLIM_PYTHON = re.compile(r"python:3\.(\d+)(?:\.\d+)?-slim(?:-\w+)?(?:@sha256:[0-9a-f]{64})?")
# What the Procfile's commands need in the working directory.
PROJECT_FILES = {"manage.py", "gunicorn.conf.py", "Procfile", "procrun.toml", "mysite", "reports"}
DEADLINE_SECONDS = 30.0


def owners(pids: list[int]) -> set[int]:
    """The uids of those of `pids` still alive (a process may end between listing and reading)."""
    found: set[int] = set()
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            found.add(uid_of(pid))
    return found


def load_image() -> Image:
    return Image(parse_dockerfile(DOCKERFILE.read_text()))


def copied_into_workdir(image: Image, ignore: list[IgnoreRule]) -> set[str]:
    """The names the COPY instructions put into WORKDIR; each source must exist in the context
    and not be kept out of it by .dockerignore."""
    names: set[str] = set()
    for instruction, sources, destination in image.copies():
        assert destination.startswith("./"), instruction
        # Owned by root as copied: the app's user can read the code, not change it.
        assert not {"chown", "chmod"} & set(instruction.options()[0]), instruction
        for source in sources:
            assert (REPO / source).exists(), source
            assert context_files(REPO, ignore, source), f"{source} is kept out by .dockerignore"
            names.add(destination[2:] if destination != "./" else Path(source).name)
    return names


def check_procrun_is_pid_1_as_a_fixed_non_root_user(image: Image) -> None:
    """A slim Python base, a numeric non-root user with a home, procrun as PID 1 in exec form."""
    base = image.one("FROM").words()[-1]
    match = SLIM_PYTHON.fullmatch(base)
    assert match, f"expected a python:3.X-slim base, got {base}"
    assert int(match.group(1)) >= 11
    uid, gid = image.user
    assert 0 not in (uid, gid)
    creates_user = next(i for i in image.all("RUN") if "useradd" in i.arguments).words()
    assert option_value(creates_user, "--uid") == str(uid)
    assert "--create-home" in creates_user
    assert image.env["HOME"] == option_value(creates_user, "--home-dir")
    user = image.all("USER")[-1]
    assert all(image.index(run) < image.index(user) for run in image.all("RUN"))
    assert image.one("CMD").exec_form() == ["procrun", "start"]
    assert image.all("ENTRYPOINT") == []
    assert image.one("STOPSIGNAL").arguments == "SIGTERM"
    assert "procrun status" in " ".join(image.healthcheck()[1])


def check_no_secret_and_a_writable_data_dir(image: Image) -> None:
    """No secret, database or Redis URL baked in (the platform sets them); DATA_DIR in the
    user's home, since the release writes the database and static files there as that user."""
    baked = [
        name
        for name, value in image.env.items()
        if SECRET_NAME.search(name)
        or URL_CREDENTIALS.search(value)
        or re.match(r"(rediss?|postgres(ql)?)://", value)
    ]
    assert baked == [], baked
    assert image.all("ARG") == [], "build arguments end up in the image history"
    sources = [source for _, copied, _ in image.copies() for source in copied]
    assert not [s for s in sources if s in {".", "./"} or ".env" in s], sources
    data_dir = Path(image.env["DATA_DIR"])
    assert Path(image.env["HOME"]) in data_dir.parents
    assert Path(image.workdir) not in data_dir.parents


def check_procrun_and_the_requirements_installed(
    image: Image, ignore: list[IgnoreRule], scratch: Path
) -> None:
    """procrun from the repository's source, after its and the project's dependencies."""
    copied = copied_into_workdir(image, ignore)
    assert copied >= PROJECT_FILES, copied
    assert {"procrun", "pyproject.toml"} <= copied  # the repository's source, not an index's
    install = next(i for i in image.all("RUN") if "pip install --no-deps ." in i.arguments)
    procrun_copy = next(c for c, sources, _ in image.copies() if sources == ["procrun"])
    assert image.index(procrun_copy) < image.index(install)
    assert run_dependency_step(image, scratch) == expected_dependencies()


def run_dependency_step(image: Image, scratch: Path) -> set[str]:
    """The RUN that installs the dependencies, where the layer would be built (only the files
    copied before it), with a pip that records what it was asked to install."""
    install = next(i for i in image.all("RUN") if "pip install" in i.arguments)
    earlier = [c for c in image.copies() if image.index(c[0]) < image.index(install)]
    for _, sources, destination in earlier:
        for source in sources:
            target = scratch / destination / (Path(source).name if destination == "./" else "")
            shutil.copy(REPO / source, target)
    fake_bin = scratch.parent / f"{scratch.name}-bin"
    fake_bin.mkdir()
    pip = fake_bin / "pip"
    pip.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "args = sys.argv[1:]\n"
        "assert args[0] == 'install', args\n"
        "files = [args[i + 1] for i, a in enumerate(args) if a == '--requirement']\n"
        "assert len(files) * 2 == len(args) - 1, args\n"
        "open('installed.txt', 'w').write(''.join(open(f).read() for f in files))\n"
    )
    pip.chmod(0o755)
    subprocess.run(
        ["/bin/sh", "-c", install.arguments],
        cwd=scratch,
        env={"PATH": f"{fake_bin}:{Path(sys.executable).parent}:/usr/bin:/bin"},
        check=True,
        timeout=DEADLINE_SECONDS,
    )
    lines = (scratch / "installed.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def expected_dependencies() -> set[str]:
    """procrun's own dependencies and the example's requirements."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = (EXAMPLE / "requirements.txt").read_text().splitlines()
    requirements = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    return {*project["dependencies"], *requirements}

"""The Dockerfile and .dockerignore, without a Docker engine (none on our machines).

Read: each property the image promises is checked on the instructions (a small parser in
tests/app/dockerfile.py): slim Python >= 3.11, a fixed non-root uid, the dependency layer before the
code, procrun as PID 1 in exec form, SIGTERM, a HEALTHCHECK by `procrun status`, no secret baked in,
and a .dockerignore that keeps secrets, VCS, tests and caches out. The build steps that can run
without an engine do: the dependency RUN against pyproject.toml alone, the HEALTHCHECK command
against each exit code of `procrun status`.

Run: the image's CMD as PID 1 of a PID namespace, as the image's user, in a root put together from
the Dockerfile (tests/app/container.py). It serves /health, passes its HEALTHCHECK run as
`docker exec` would (inside the PID namespace, and from outside it), fails it while a process is
stopped, and exits 0 on SIGTERM with nothing of its user left running.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.container import (
    Container,
    ImageRoot,
    build_root,
    descendants,
    namespace_pids,
    processes_of,
    uid_of,
)
from tests.app.dockerfile import (
    IgnoreRule,
    Image,
    context_files,
    env_assignments,
    is_ignored,
    parse_dockerfile,
    parse_dockerignore,
)
from tests.app.formation import REPO, http
from tests.app.redisserver import RedisServer, free_port
from tests.harness import wait_for_state, wait_until_dead

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEADLINE_SECONDS = 30.0
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|PRIVATE|CREDENTIAL|AUTH", re.I)
URL_CREDENTIALS = re.compile(r"\w+://[^/\s:@]*:[^@\s]+@")


@pytest.fixture(scope="module")
def image() -> Image:
    return Image(parse_dockerfile(DOCKERFILE.read_text()))


@pytest.fixture(scope="module")
def ignore() -> list[IgnoreRule]:
    return parse_dockerignore(DOCKERIGNORE.read_text())


def option_value(words: list[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value` among a command's words."""
    for index, word in enumerate(words):
        if word == name and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
    return None


def seconds(duration: str) -> float:
    """Docker's durations as used here: 30s, 1m, 1m30s, 500ms."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


# --- read: the instructions ---------------------------------------------------------------------


def test_the_parser_reads_continuations_comments_and_both_forms() -> None:
    parsed = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nFROM x\nrun a \\\n  # inside\n  && b\n"
        'cmd ["procrun", "start"]\nENV A=1 \\\n    B="two words"\nENV LEGACY some value\n'
    )
    assert [(i.line, i.keyword) for i in parsed] == [
        (2, "FROM"),
        (3, "RUN"),
        (6, "CMD"),
        (7, "ENV"),
        (9, "ENV"),
    ]
    assert parsed[1].arguments == "a && b"
    assert parsed[1].exec_form() is None
    assert parsed[2].exec_form() == ["procrun", "start"]
    assert env_assignments(parsed[3]) == {"A": "1", "B": "two words"}
    assert env_assignments(parsed[4]) == {"LEGACY": "some value"}


def test_the_base_is_a_slim_python_of_at_least_3_11(image: Image) -> None:
    base = image.one("FROM").words()[-1]
    match = re.fullmatch(r"python:3\.(\d+)(?:\.\d+)?-slim(?:-\w+)?(?:@sha256:[0-9a-f]{64})?", base)
    assert match, f"expected a python:3.X-slim base, got {base}"
    assert int(match.group(1)) >= 11


def test_it_runs_as_a_fixed_non_root_user_with_a_home(image: Image) -> None:
    uid, gid = image.user
    assert uid != 0
    assert gid != 0
    creates_user = next(i for i in image.all("RUN") if "useradd" in i.arguments)
    words = creates_user.words()
    assert option_value(words, "--uid") == str(uid)
    assert "--create-home" in words or "-m" in words, "the user needs a home for $HOME"
    assert image.env["HOME"] == option_value(words, "--home-dir")
    # Everything is installed as root, before the switch; nothing runs as root after it.
    user = image.all("USER")[-1]
    assert all(image.index(run) < image.index(user) for run in image.all("RUN"))
    assert image.index(user) < image.index(image.one("CMD"))


def test_the_dependency_layer_comes_before_the_code_and_needs_only_pyproject(
    image: Image, tmp_path: Path
) -> None:
    copies = image.copies()
    first, sources, _ = copies[0]
    assert sources == ["pyproject.toml"]
    installs = [i for i in image.all("RUN") if "pip install" in i.arguments]
    dependencies = installs[0]
    code = [c for c, sources, _ in copies if {"procrun", "app"} & set(sources)]
    assert image.index(first) < image.index(dependencies) < min(image.index(c) for c in code)
    # Run the step where the layer would be built: nothing but pyproject.toml, and a pip that
    # records what it was asked to install.
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    pip = fake_bin / "pip"
    pip.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "args = sys.argv[1:]\n"
        "assert args[:2] == ['install', '--requirement'], args\n"
        "open('installed.txt', 'w').write(open(args[2]).read())\n"
    )
    pip.chmod(0o755)
    environment = {"PATH": f"{fake_bin}:{Path(sys.executable).parent}:/usr/bin:/bin"}
    subprocess.run(
        ["/bin/sh", "-c", dependencies.arguments],
        cwd=tmp_path,
        env=environment,
        check=True,
        timeout=DEADLINE_SECONDS,
    )
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    expected = {*project["dependencies"], *project["optional-dependencies"]["app"]}
    assert set((tmp_path / "installed.txt").read_text().split()) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "installed.txt", "pyproject.toml"]


def test_procrun_and_the_app_are_installed_in_the_workdir(
    image: Image, ignore: list[IgnoreRule]
) -> None:
    assert image.workdir.startswith("/")
    copied = {source for _, sources, _ in image.copies() for source in sources}
    assert {"procrun", "app", "Procfile", "procrun.toml", "pyproject.toml"} <= copied
    for instruction, sources, destination in image.copies():
        assert destination.startswith(("./", image.workdir)), instruction
        # Owned by root as copied: the app's user can read the code, not change it.
        assert not {"chown", "chmod"} & set(instruction.options()[0]), instruction
        for source in sources:
            assert (REPO / source).exists(), source
            assert context_files(REPO, ignore, source), f"{source} is kept out by .dockerignore"
    procrun_copy = next(c for c, sources, _ in image.copies() if "procrun" in sources)
    install = next(
        i
        for i in image.all("RUN")
        if image.index(i) > image.index(procrun_copy) and "pip install" in i.arguments
    )
    assert re.search(r"pip install --no-deps \.(\s|$)", install.arguments), install


def test_procrun_is_pid_1_and_gets_sigterm(image: Image) -> None:
    assert image.one("CMD").exec_form() == ["procrun", "start"]
    assert image.all("ENTRYPOINT") == [], "an entrypoint would run before procrun, or instead"
    assert image.one("STOPSIGNAL").arguments in {"SIGTERM", "TERM", "15"}


def test_the_healthcheck_is_procrun_status_with_room_to_start(image: Image) -> None:
    options, argv = image.healthcheck()
    assert "procrun status" in " ".join(argv)
    interval = seconds(options.get("interval", "30s"))
    assert seconds(options["start-period"]) >= 20, "gunicorn and Celery need a few seconds"
    assert 10 <= interval <= 60
    assert seconds(options.get("timeout", "30s")) < interval
    assert int(options.get("retries", "3")) >= 2, "one restart with backoff must not fail it"


@pytest.mark.parametrize(("status_code", "health"), [(0, 0), (1, 1), (3, 1), (4, 1)])
def test_the_healthcheck_maps_status_codes_to_docker_s(
    image: Image, tmp_path: Path, status_code: int, health: int
) -> None:
    """Docker: 0 healthy, 1 unhealthy, 2 reserved, other codes an error of the probe."""
    _, argv = image.healthcheck()
    fake = tmp_path / "procrun"
    fake.write_text(f"#!/bin/sh\nexit {status_code}\n")
    fake.chmod(0o755)
    result = subprocess.run(
        argv, env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, check=False, timeout=DEADLINE_SECONDS
    )
    assert result.returncode == health


def test_no_secret_is_baked_in(image: Image) -> None:
    env = image.env
    assert env["PYTHONUNBUFFERED"] == "1"
    # procrun.toml holds the deadline for Render; other platforms set it at run time.
    assert "PROCRUN_SHUTDOWN_TIMEOUT" not in env
    for name, value in env.items():
        assert not SECRET_NAME.search(name), name
        assert not URL_CREDENTIALS.search(value), name
        assert not re.match(r"rediss?://", value), f"{name}: the platform provides Redis URLs"
    assert image.all("ARG") == [], "build arguments end up in the image history"
    for _, sources, _ in image.copies():
        assert not any(source in {".", "./"} or ".env" in source for source in sources)


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.production",
        "app/.env",
        ".git/HEAD",
        ".venv/bin/python",
        "tests/app/test_deploy.py",
        "app/__pycache__/web.cpython-312.pyc",
        "procrun/__pycache__/cli.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        ".pytest_cache/v/cache/nodeids",
        ".ruff_cache/CACHEDIR.TAG",
        ".hypothesis/examples/x",
        "procrun.egg-info/PKG-INFO",
        "celerybeat-schedule",
    ],
)
def test_dockerignore_keeps_out(ignore: list[IgnoreRule], path: str) -> None:
    assert is_ignored(ignore, path)


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "README.md",
        "Procfile",
        "procrun.toml",
        "app/web.py",
        "procrun/cli/main.py",
    ],
)
def test_dockerignore_lets_in_what_the_image_needs(ignore: list[IgnoreRule], path: str) -> None:
    assert not is_ignored(ignore, path)


# --- run: the CMD as PID 1, as the image's user ------------------------------------------------

# --- run: the CMD as PID 1, as the image's user ------------------------------------------------


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="a PID namespace and a chroot need root; CI runs as root"
)


@pytest.fixture
def image_root(
    image: Image, ignore: list[IgnoreRule], plain_redis: RedisServer
) -> Iterator[ImageRoot]:
    with plain_redis.client() as client:
        client.flushdb()
    platform = {  # what a platform sets at run time
        "PORT": str(free_port()),
        "REDIS_URL": plain_redis.url,
        "WEB_CONCURRENCY": "1",
        "CELERY_CONCURRENCY": "1",
        "TICK_SECONDS": "1",
    }
    root = build_root(image, REPO, ignore, platform)
    yield root
    # The mounts were private to the container's namespace: here these are plain directories.
    shutil.rmtree(root.path)


@needs_root
def test_the_image_cmd_runs_as_pid_1_as_the_app_user(image: Image, image_root: ImageRoot) -> None:
    cmd = image.one("CMD").exec_form()
    assert cmd is not None
    _, healthcheck = image.healthcheck()
    port = image_root.env["PORT"]
    container = Container(image_root, cmd)
    try:
        pid1 = container.pid1()
        container.wait_for_line(rf"web\.1 .*Listening at: http://0\.0\.0\.0:{port}\b")
        container.wait_for_line(r"worker\.1 .*celery@\S+ ready")
        container.wait_for_line(r"beat\.1 .*beat: Acquired lock")
        assert namespace_pids(pid1)[-1] == 1
        assert "procrun\0start" in Path(f"/proc/{pid1}/cmdline").read_text()
        processes = [pid1, *descendants(pid1)]
        assert len(processes) >= 4  # procrun, gunicorn and its worker, Celery and its pool, Beat
        assert {uid_of(pid) for pid in processes} == {image_root.uid}
        reply = http("GET", f"http://127.0.0.1:{port}/health")
        assert reply.status == 200, reply.body

        def health(pid_namespace: bool = True) -> int:
            argv = container.exec(*healthcheck, pid_namespace=pid_namespace)
            run = subprocess.run(argv, capture_output=True, timeout=DEADLINE_SECONDS, check=False)
            return run.returncode

        wait_for_state(lambda: health() == 0, "a passing HEALTHCHECK inside the container")
        assert health(pid_namespace=False) == 0  # a client outside the PID namespace
        subprocess.run(
            container.exec("procrun", "stop", "web"), timeout=DEADLINE_SECONDS, check=True
        )
        assert health() == 1  # `procrun status` said 3: web is STOPPED
        subprocess.run(
            container.exec("procrun", "start", "web"), timeout=DEADLINE_SECONDS, check=True
        )
        wait_for_state(lambda: health() == 0, "a passing HEALTHCHECK with web back")
        processes = [pid1, *descendants(pid1)]

        os.kill(pid1, signal.SIGTERM)
        assert container.proc.wait(DEADLINE_SECONDS) == 0, container.rest()
        output = container.rest()
        for pid in processes:
            wait_until_dead(pid, timeout=5)
        assert processes_of(image_root.uid) == [], "processes of the image's user outlived PID 1"
    finally:
        container.close()
    assert re.search(r"procrun\.exited +returncode=0", output.splitlines()[-1]), output
    assert "superuser privileges" not in output  # Celery's warning when run as root
    assert "Permission denied" not in output
    # Beat keeps its schedule in Redis: nothing written into the root-owned WORKDIR.
    assert not list(image_root.workdir_path.glob("celerybeat-schedule*"))

"""A private Docker daemon for one test module, and the repository's image built on it.

dockerd runs as root with its own data root, exec root and socket, no bridge and no iptables
rules (containers use the host's network), as ../shared/FACTS.md ("Building and running container
images on these machines") describes. No registry is reachable, so the Dockerfile's base,
python:3.12-slim, is made here: a Debian bookworm root from mmdebstrap (kept in /var/tmp between
runs: it takes a minute), with a virtualenv first on PATH, so that `python` and `pip` behave as
in python:slim, and this machine's CA bundle for pip (a fact of this machine, not of the image).
Anything that keeps the daemon from starting skips the tests that need it, saying why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_SECONDS = 30.0
BUILD_SECONDS = 600.0
COMMAND_SECONDS = 120.0
BASE_IMAGE = "python:3.12-slim"
ROOTFS_CACHE = Path("/var/tmp/procrun-test-bookworm-python.tar")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BASE_DOCKERFILE = """\
FROM procrun-test-rootfs
COPY ca-certificates.crt /etc/ssl/certs/build-ca-bundle.crt
ENV PIP_CERT=/etc/ssl/certs/build-ca-bundle.crt
RUN python3 -m venv /usr/local/python
ENV PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["python"]
"""
TOOLS = ("dockerd", "docker", "docker-compose", "mmdebstrap")


class Docker:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}
        self._log = (directory / "dockerd.log").open("wb")
        self.daemon = subprocess.Popen(
            [
                "dockerd",
                "--storage-driver=overlay2",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                f"--data-root={directory / 'data'}",
                f"--exec-root={directory / 'exec'}",
                f"--pidfile={directory / 'dockerd.pid'}",
                f"--host=unix://{self.socket}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def run(self, *args: str, timeout: float = COMMAND_SECONDS) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def answers(self) -> bool:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and self.daemon.poll() is None:
            if self.run("docker", "version", timeout=10).returncode == 0:
                return True
            time.sleep(0.2)
        return False

    def build(self, tag: str, context: Path) -> None:
        build = ("docker", "build", "--network", "host", "-q", "-t", tag, str(context))
        done = self.run(*build, timeout=BUILD_SECONDS)
        assert done.returncode == 0, done.stdout + done.stderr

    def stop(self) -> None:
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(timeout=START_SECONDS)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        self._log.close()
        # dockerd leaves its network namespace's bind mount behind.
        netns = self.directory / "exec" / "netns" / "default"
        if os.path.ismount(netns):
            subprocess.run(["umount", str(netns)], check=False)


def _rootfs(directory: Path) -> Path:
    if ROOTFS_CACHE.exists():
        return ROOTFS_CACHE
    partial = directory / "rootfs.tar"
    packages = "--include=python3,python3-venv,python3-pip,ca-certificates"
    done = subprocess.run(
        ["mmdebstrap", "--variant=minbase", packages, "bookworm", str(partial)],
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"no base image: mmdebstrap failed: {done.stderr.strip()[-300:]}")
    with contextlib.suppress(OSError):
        shutil.copy(partial, ROOTFS_CACHE)
    return partial


@contextlib.contextmanager
def private_docker() -> Iterator[Docker]:
    """A running daemon that has python:3.12-slim, stopped and removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install docker.io mmdebstrap)")
    directory = Path(tempfile.mkdtemp(prefix="procrun-dockerd-", dir="/var/tmp"))
    docker = Docker(directory)
    try:
        if not docker.answers():
            log = (directory / "dockerd.log").read_text(errors="replace").strip()
            pytest.skip(f"dockerd did not start: {log[-300:]}")
        rootfs = _rootfs(directory)
        imported = docker.run("docker", "import", str(rootfs), "procrun-test-rootfs")
        assert imported.returncode == 0, imported.stderr
        base = directory / "base"
        base.mkdir()
        shutil.copy(CA_BUNDLE, base / "ca-certificates.crt")
        (base / "Dockerfile").write_text(BASE_DOCKERFILE)
        docker.build(BASE_IMAGE, base)
        yield docker
    finally:
        docker.stop()
        shutil.rmtree(directory, ignore_errors=True)

"""Throwaway redis-servers for the app's tests: a free port each, plain or TLS, never the shared
Redis on 6379. Readiness is its "Ready to accept connections" line, then a PING; deadlines are
hang guards."""

from __future__ import annotations

import contextlib
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import trustme

from app.settings import Settings

READY_LINE = "Ready to accept connections"
DEADLINE_SECONDS = 10.0
HOST = "localhost"  # the name the test certificates are issued for


def free_port() -> int:
    """A port nothing listens on now; the caller retries if someone takes it before it binds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_ca(directory: Path, name: str) -> trustme.CA:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / f"{name}.pem"))
    return ca


def server_certificate(directory: Path, ca: trustme.CA) -> TlsFiles:
    """A certificate for `localhost` only, so connecting to 127.0.0.1 fails the hostname check."""
    leaf = ca.issue_cert(HOST)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca))
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    leaf.private_key_pem.write_to_path(str(files.key))
    return files


class RedisServer:
    """One redis-server process on a free port of 127.0.0.1; it writes nothing to disk, except the
    snapshot of an outage()."""

    def __init__(
        self, directory: Path, *, tls: TlsFiles | None = None, password: str | None = None
    ) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail(
                "redis-server not found: install it (apt-get install redis-server / brew install "
                "redis) to run the app's tests"
            )
        self.directory = directory
        self.tls = tls
        self.password = password
        self.lines: list[str] = []
        for _ in range(5):  # another process may take the free port before redis binds it
            self.port = free_port()
            if self._start():
                return
        raise AssertionError("redis-server did not start:\n" + "\n".join(self.lines))

    def _start(self) -> bool:
        self.proc = subprocess.Popen(
            self._argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if self._wait_until_ready():
            return True
        self.stop()
        return False

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """The server goes away, keeping its data (a snapshot at shutdown, as a managed Redis
        keeps it through a restart or failover), and comes back on the same port afterwards."""
        with self.client() as client, contextlib.suppress(redis.ConnectionError):
            client.shutdown(save=True)  # the server closes the connection as it goes
        self.stop()
        try:
            yield
        finally:
            if not self._start():
                raise AssertionError("redis-server did not come back:\n" + "\n".join(self.lines))

    def _argv(self) -> list[str]:
        argv = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.directory)]
        if self.tls is None:
            argv += ["--port", str(self.port)]
        else:
            argv += ["--port", "0", "--tls-port", str(self.port)]
            argv += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            argv += ["--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        return argv

    def _wait_until_ready(self) -> bool:
        """Read the server's output until it is ready (True) or has exited (False)."""
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:  # keeps draining the pipe for the server's whole life
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                raise AssertionError(
                    "redis-server not ready in time:\n" + "\n".join(self.lines)
                ) from None
            if line is None:
                return False
            self.lines.append(line)
            if READY_LINE in line:
                break
        with self.client() as client:
            assert client.ping()
        return True

    @property
    def url(self) -> str:
        scheme = "redis" if self.tls is None else "rediss"
        auth = f":{self.password}@" if self.password is not None else ""
        return f"{scheme}://{auth}{HOST}:{self.port}/0"

    def client(self) -> redis.Redis:
        """A client of the test's own, verifying TLS with the test CA."""
        ca = str(self.tls.ca) if self.tls else None
        options = Settings(ca_certs=ca).redis_options(self.url)
        return redis.Redis.from_url(self.url, decode_responses=True, **options)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(DEADLINE_SECONDS)  # it ends at the server's end of output
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()

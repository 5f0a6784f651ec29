"""The FastAPI example (examples/fastapi) run by real procrun against a test Redis: its own
Procfile and procrun.toml, the gunicorn overlay on demand, free ports for the API and Flower, and
a control socket of its own; and the HTTP, Flower and ledger checks the tests share."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import signal
import socket
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import redis

from tests.app.formation import REPO, app_environment
from tests.app.redisserver import free_port
from tests.harness import Procrun, client_command, wait_for_state

EXAMPLE = REPO / "examples" / "fastapi"
PROCFILE = EXAMPLE / "Procfile"
GUNICORN_OVERLAY = EXAMPLE / "Procfile.gunicorn"
FLOWER_GUARD = EXAMPLE / "service" / "flower.py"
STARTUP_DEADLINE_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 10.0
JOB_DEADLINE_SECONDS = 20.0
FLOWER_USER = "ops"
FLOWER_PASSWORD = "flower-pa55word-3c9e"
FLOWER_AUTH = (FLOWER_USER, FLOWER_PASSWORD)
SIGKILL_SENT = re.compile(r"signal\.sent .*signal=SIGKILL")


def example_environment(redis_url: str, **extra: str) -> dict[str, str]:
    """The reference app's test variables (PATH with this venv's bin, REDIS_URL, two pool
    processes, the TLS variables empty: unset) and Flower's credentials; FLOWER_ADDRESS empty
    leaves the example's default."""
    flower = {"FLOWER_ADDRESS": "", "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH)}
    return app_environment(redis_url, **{**flower, **extra})


def with_database(url: str, db: int) -> str:
    """`url` with another database number: formations that run side by side share no queue."""
    return f"{url.rsplit('/', 1)[0]}/{db}"


class ExampleFormation(Procrun):
    """`procrun start -f examples/fastapi/Procfile [-f Procfile.gunicorn] [NAME...]`: the project
    directory is the example's, so its procrun.toml applies; `shutdown_timeout` keeps a failing
    test from hanging on the worker's 280 s grace. The control socket lives in a short private
    directory (socket paths are limited to about 100 bytes)."""

    def __init__(
        self,
        directory: Path,
        env: Mapping[str, str],
        *names: str,
        gunicorn: bool = False,
        shutdown_timeout: str = "15s",
    ) -> None:
        self.port, self.flower_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.flower_url = f"http://127.0.0.1:{self.flower_port}"
        self._sockets = tempfile.TemporaryDirectory(prefix="prs-")
        self.socket_path = Path(self._sockets.name) / "procrun.sock"
        overlay = ("-f", str(GUNICORN_OVERLAY)) if gunicorn else ()
        ports = {"PORT": str(self.port), "FLOWER_PORT": str(self.flower_port)}
        super().__init__(
            directory,
            PROCFILE.read_text(),  # written to the scratch directory, unused: -f names the real one
            *("-f", str(PROCFILE), *overlay, "--shutdown-timeout", shutdown_timeout, *names),
            env={**env, **ports, "PROCRUN_SOCKET": str(self.socket_path)},
        )

    def client(self, *args: str) -> subprocess.Popen[str]:
        return client_command(self.socket_path, *args)

    def wait_until_ready(self, *instances: str) -> None:
        """procrun's own word that each instance passed its readiness probe."""
        for instance in instances:
            self.wait_for_line(rf"process\.ready .*process={instance}\b", STARTUP_DEADLINE_SECONDS)

    def stop_cleanly(self, *absent: str) -> str:
        """SIGTERM; procrun exits 0 with no SIGKILL and no traceback, and nothing it wrote holds
        any of `absent` (passwords, warnings). Everything it wrote is returned."""
        self.signal(signal.SIGTERM)
        returncode = self.wait(STARTUP_DEADLINE_SECONDS)
        output = self.output()
        assert returncode == 0, output
        assert not SIGKILL_SENT.search(output), output
        assert "Traceback" not in output, output
        assert [text for text in absent if text in output] == []
        return output

    def output(self) -> str:
        """Everything procrun wrote, once it has exited."""
        self.rest()
        return "\n".join([self.transcript(), self.stderr])

    def __enter__(self) -> ExampleFormation:
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._sockets.cleanup()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # names in lower case
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def request(
    method: str, url: str, document: object = None, auth: tuple[str, str] | None = None
) -> Reply:
    headers = {"Content-Type": "application/json"} if document is not None else {}
    if auth is not None:
        token = base64.b64encode(":".join(auth).encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    body = json.dumps(document).encode() if document is not None else None
    call = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=HTTP_TIMEOUT_SECONDS) as response:
            return Reply(response.status, _headers(response.headers), response.read().decode())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, _headers(error.headers), error.read().decode())


def _headers(message: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in message.items()}


def slow_request(procrun: ExampleFormation, seconds: float) -> Callable[[], list[Reply]]:
    """GET /slow in a thread, returned once the app has logged that it began; call the result
    for the replies (one, unless it got none)."""
    replies: list[Reply] = []
    url = f"{procrun.base_url}/slow?seconds={seconds}"
    thread = threading.Thread(target=lambda: replies.append(request("GET", url)))
    thread.start()
    procrun.wait_for_line(r"web\.1 .*slow request started")

    def joined() -> list[Reply]:
        thread.join(JOB_DEADLINE_SECONDS)
        return replies

    return joined


def submit(base_url: str, seconds: float) -> str:
    reply = request("POST", f"{base_url}/jobs", {"seconds": seconds})
    assert reply.status == 202, reply
    job_id: str = reply.json()["id"]
    assert reply.headers["location"] == f"/jobs/{job_id}"
    return job_id


def wait_for_job(base_url: str, job_id: str, state: str) -> dict[str, object]:
    seen: list[dict[str, object]] = []

    def reached() -> bool:
        seen.append(request("GET", f"{base_url}/jobs/{job_id}").json())
        return seen[-1]["state"] == state

    wait_for_state(reached, f"job {job_id} in state {state}", JOB_DEADLINE_SECONDS)
    return seen[-1]


def flower_sees_a_worker(flower_url: str) -> None:
    """Flower lists the worker as online: it reads the worker's events through the broker."""

    def online() -> bool:
        reply = request("GET", f"{flower_url}/api/workers?status=1", auth=FLOWER_AUTH)
        assert reply.status == 200, reply
        return any(name.startswith("celery@") and up for name, up in reply.json().items())

    wait_for_state(online, "Flower to list the worker as online", JOB_DEADLINE_SECONDS)


def ledger_entry(client: redis.Redis, job_id: str) -> dict[str, str]:
    """The example's ledger hash for `job_id` (service/ledger.py): seconds, runs, done."""
    entry: dict[str, str] = client.hgetall(f"job:{job_id}")  # type: ignore[assignment]
    return entry


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses with a socket listening on `port`, from /proc/net/tcp."""
    found: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def flower_guard() -> Any:
    """examples/fastapi/service/flower.py as a module of its own: it imports only the standard
    library, so its checks run here without the example's package on sys.path."""
    spec = importlib.util.spec_from_file_location("fastapi_example_flower", FLOWER_GUARD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""The zero-configuration readiness defaults, checked against the real programs' own output and
datagrams (gunicorn's sd_notify, a Celery worker's ready line on a real redis-server, uvicorn's
startup line), not against a copy of them. No procrun.toml: the defaults are what is tested."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.redisserver import RedisServer, free_port
from tests.harness import Procrun, client_command, write_script

WSGI_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""

CELERY_APP = """
import os
from celery import Celery
app = Celery("tasks", broker=os.environ["BROKER_URL"])
"""


@pytest.fixture
def control() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="prd-"))
    yield directory / "procrun.sock"
    shutil.rmtree(directory, ignore_errors=True)


def test_gunicorn_is_ready_when_its_arbiter_notifies(tmp_path: Path, control: Path) -> None:
    write_script(tmp_path, "wsgiapp.py", WSGI_APP)
    procfile = "web: gunicorn --no-control-socket --workers 1 --bind 127.0.0.1:$PORT wsgiapp:app\n"
    env = {"PROCRUN_SOCKET": str(control), "PORT": str(free_port())}
    with Procrun(tmp_path, procfile, env=env) as pr:
        pr.wait_for_line(r"process.ready .*probe=notify process=web.1")
        client = client_command(control, "status", "--json")
        out, _ = client.communicate(timeout=30)
        web = json.loads(out)["processes"][0]
        assert (client.returncode, web["state"]) == (0, "RUNNING")
        assert web["status_text"] == "Gunicorn arbiter booted"
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


def test_uvicorn_is_ready_on_its_startup_line(tmp_path: Path) -> None:
    write_script(tmp_path, "asgiapp.py", ASGI_APP)
    procfile = "web: uvicorn --host 127.0.0.1 --port $PORT asgiapp:app\n"
    with Procrun(tmp_path, procfile, env={"PORT": str(free_port())}) as pr:
        pr.wait_for_line(r"web.1 +\| .*Uvicorn running on http://127.0.0.1")
        pr.wait_for_line(r"process.ready .*probe='log Uvicorn running on ' process=web.1")
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


def test_a_celery_worker_is_ready_on_its_own_ready_line(tmp_path: Path) -> None:
    """With the node name the README advises for several workers (`-n %n-${PS}@%h`), which
    the ready line carries instead of `celery@`."""
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    try:
        write_script(tmp_path, "tasks.py", CELERY_APP)
        procfile = (
            "worker: celery -A tasks worker -l info -n %n-${PS}@%h --pool solo --without-gossip "
            "--without-mingle --without-heartbeat\n"
        )
        with Procrun(tmp_path, procfile, env={"BROKER_URL": redis.url}) as pr:
            pr.wait_for_line(r"worker.1 +\| .*\S+-worker\.1@\S+ ready\.")
            pr.wait_for_line(r"process.ready .*probe='log .*@.* ready.*' process=worker.1")
            pr.signal(signal.SIGTERM)
            assert pr.wait() == 0
    finally:
        redis.stop()

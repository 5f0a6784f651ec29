"""Readiness, dependencies and liveness with real children, real sockets and real signals.

The children are small Python scripts that bind a port, answer HTTP or send sd_notify datagrams
when the test says so (a trigger file); the tests wait for procrun's lines and states, never for
time to pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.harness import Procrun, child, client_command, write_script

# Binds $PORT (and answers HTTP) only once the trigger file exists.
LATE_SERVER = """
import http.server, os, pathlib, sys, time
trigger = pathlib.Path(sys.argv[1])
print("waiting for the trigger", flush=True)
while not trigger.exists():
    time.sleep(0.01)
address = ("127.0.0.1", int(os.environ["PORT"]))
server = http.server.HTTPServer(address, http.server.SimpleHTTPRequestHandler)
print("listening", flush=True)
server.serve_forever()
"""

# Prints its NOTIFY_SOCKET, then sends READY=1 (and a STATUS) once the trigger file exists.
NOTIFIER = """
import os, pathlib, socket, sys, time
path = os.environ["NOTIFY_SOCKET"]
print("notify socket", path, flush=True)
trigger = pathlib.Path(sys.argv[1])
while not trigger.exists():
    time.sleep(0.01)
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendto(b"READY=1\\nSTATUS=serving from the child", path)
print("notified", flush=True)
time.sleep(3600)
"""


@pytest.fixture
def sockets() -> Iterator[Path]:
    """A short private directory for the control socket (AF_UNIX paths are short)."""
    directory = Path(tempfile.mkdtemp(prefix="prh-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def status(control: Path, *args: str) -> tuple[int, dict[str, object]]:
    client = client_command(control, "status", "--json", *args)
    out, err = client.communicate(timeout=30)
    assert not err, err
    result: dict[str, object] = json.loads(out)
    return client.returncode, result


def row(result: dict[str, object], name: str) -> dict[str, object]:
    processes = result["processes"]
    assert isinstance(processes, list)
    found: dict[str, object] = next(p for p in processes if p["name"] == name)
    return found


def test_a_late_binding_server_is_starting_until_its_port_accepts(
    tmp_path: Path, sockets: Path
) -> None:
    server = write_script(tmp_path, "server.py", LATE_SERVER)
    trigger = tmp_path / "bind-now"
    control = sockets / "procrun.sock"
    port = free_port()
    toml = '[processes.web]\nready = { tcp = "127.0.0.1:$PORT" }\n'
    env = {"PROCRUN_SOCKET": str(control), "PORT": str(port)}
    with Procrun(tmp_path, f"web: {child(server, str(trigger))}\n", env=env, toml=toml) as pr:
        pr.wait_for_line(r"web.1 +\| waiting for the trigger")
        pr.wait_for_line(r"probe.failed .*detail='connection refused' process=web.1")  # once
        code, result = status(control)
        web = row(result, "web.1")
        assert (code, web["state"], web["ready"]) == (3, "STARTING", False)
        assert str(web["waiting"]).startswith(f"tcp 127.0.0.1:{port}, ")
        trigger.touch()
        pr.wait_for_line(rf"process.ready .*probe='tcp 127.0.0.1:{port}' process=web.1")
        code, result = status(control)
        assert (code, row(result, "web.1")["state"], row(result, "web.1")["waiting"]) == (
            0,
            "RUNNING",
            None,
        )
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


def test_status_wait_answers_once_the_formation_is_ready(tmp_path: Path, sockets: Path) -> None:
    server = write_script(tmp_path, "server.py", LATE_SERVER)
    trigger = tmp_path / "bind-now"
    control = sockets / "procrun.sock"
    toml = '[processes.web]\nready = { http = "http://127.0.0.1:$PORT/" }\n'
    env = {"PROCRUN_SOCKET": str(control), "PORT": str(free_port())}
    with Procrun(tmp_path, f"web: {child(server, str(trigger))}\n", env=env, toml=toml) as pr:
        pr.wait_for_line(r"web.1 +\| waiting for the trigger")
        expired = client_command(control, "status", "--wait", "--timeout", "200ms")
        expired.communicate(timeout=30)
        assert expired.returncode == 3  # not ready within the timeout
        waiting = client_command(control, "status", "--wait", "--timeout", "60s")
        trigger.touch()
        out, _ = waiting.communicate(timeout=30)
        assert waiting.returncode == 0, out
        assert "web.1  RUNNING" in out
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


def test_a_probe_that_never_passes_is_a_failed_start_under_the_restart_rules(
    tmp_path: Path,
) -> None:
    toml = """
        [processes.web]
        ready = { tcp = "127.0.0.1:1" }
        ready_timeout = "300ms"
        max_restarts = 1
        grace = "2s"
    """
    with Procrun(tmp_path, "web: sleep 3600\n", toml=toml) as pr:
        pr.wait_for_line(r"probe.timed_out .*process=web.1 reason='not ready within 0.3 s'")
        pr.wait_for_line(r"signal.sent .*process=web.1 signal=SIGTERM")
        pr.wait_for_line(r"process.exited .*after not ready within 0.3 s.*process=web.1")
        pr.wait_for_line(r"process.restarting .*process=web.1")
        pr.wait_for_line(r"probe.timed_out .*process=web.1")
        pr.wait_for_line(r"process.gave_up .*process=web.1")
        assert pr.wait() != 0


def test_a_notify_probe_takes_ready_only_from_the_process_own_tree(
    tmp_path: Path, sockets: Path
) -> None:
    notifier = write_script(tmp_path, "notifier.py", NOTIFIER)
    trigger = tmp_path / "notify-now"
    control = sockets / "procrun.sock"
    toml = "[processes.app]\nready = { notify = true }\n"
    env = {"PROCRUN_SOCKET": str(control)}
    with Procrun(tmp_path, f"app: {child(notifier, str(trigger))}\n", env=env, toml=toml) as pr:
        path = pr.wait_for_line(r"app.1 +\| notify socket (\S+)").group(1)
        assert os.stat(path).st_mode & 0o077 == 0, "the notify socket must be owner-only"
        # This test process is not in app.1's session: its READY=1 must be ignored.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as foreign:
            foreign.sendto(b"READY=1", path)
        pr.wait_for_line(r"notify.rejected .*")
        code, result = status(control)
        assert (code, row(result, "app.1")["state"]) == (3, "STARTING")
        trigger.touch()
        pr.wait_for_line(r"process.ready .*probe=notify process=app.1")
        code, result = status(control)
        app = row(result, "app.1")
        assert (code, app["state"], app["status_text"]) == (0, "RUNNING", "serving from the child")
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


def test_a_liveness_probe_restarts_a_hung_process(tmp_path: Path) -> None:
    server = write_script(tmp_path, "server.py", LATE_SERVER)
    trigger = tmp_path / "bind-now"
    trigger.touch()
    toml = """
        [processes.web]
        ready = { tcp = "127.0.0.1:$PORT" }
        alive = { http = "http://127.0.0.1:$PORT/", every = "0.1s", timeout = "0.2s", failures = 2 }
        grace = "2s"
    """
    env = {"PORT": str(free_port())}
    with Procrun(tmp_path, f"web: {child(server, str(trigger))}\n", env=env, toml=toml) as pr:
        pr.wait_for_line(r"process.ready .*process=web.1")
        pid = int(pr.wait_for_line(r"process.running +pid=(\d+) process=web.1").group(1))
        os.kill(pid, signal.SIGSTOP)  # hung: the port still accepts, but nothing answers
        try:
            pr.wait_for_line(r"liveness.failed .*process=web.1 reason='http .* 2 times in a row")
            pr.wait_for_line(r"process.exited .*process=web.1")
            pr.wait_for_line(r"process.restarting .*process=web.1")
            pr.wait_for_line(r"process.ready .*process=web.1")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


def seen_before(pr: Procrun, needle: str) -> bool:
    """Whether a line holding `needle` came before the line the last wait matched: lines are
    read in order, so everything before it is buffered, unmatched, in `lines`."""
    return any(needle in line for line in pr.lines)


def test_a_worker_starts_after_redis_is_ready_and_stops_before_it(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    redis_socket = tmp_path / "redis.sock"
    procfile = (
        f"redis: redis-server --port 0 --unixsocket {redis_socket} --save '' --appendonly no\n"
        f"worker: {sys.executable} -c \"print('worker up', flush=True); import time; "
        'time.sleep(3600)"\n'
    )
    toml = '[processes.worker]\ndepends_on = ["redis"]\n'
    with Procrun(tmp_path, procfile, toml=toml) as pr:
        # redis-server's own line, the zero-configuration default for it (not a copy of it).
        pr.wait_for_line(
            r"process.ready .*probe='log \[Rr\]eady to accept connections' process=redis"
        )
        assert not seen_before(pr, "process=worker.1"), "the worker started before redis"
        pr.wait_for_line(r"process.running .*process=worker.1")
        pr.signal(signal.SIGTERM)
        pr.wait_for_line(r"process.stopped .*process=worker.1")
        assert not seen_before(pr, "redis.1 signal=SIGTERM"), "redis was stopped first"
        pr.wait_for_line(r"signal.sent .*process=redis.1 signal=SIGTERM")
        pr.wait_for_line(r"process.stopped .*process=redis.1")
        assert pr.wait() == 0


TLS_SERVER = """
import http.server, os, ssl, sys
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1])
handler = http.server.SimpleHTTPRequestHandler
server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), handler)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("serving https", flush=True)
server.serve_forever()
"""


def test_an_https_probe_verifies_the_certificate_under_procrun_start(tmp_path: Path) -> None:
    """`procrun start` keeps OpenSSL out of asyncio; an https probe must still work, verified."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "server.pem")
    )
    server = write_script(tmp_path, "tls.py", TLS_SERVER)
    toml = '[processes.web]\nready = { http = "https://localhost:$PORT/" }\n'
    env = {"PORT": str(free_port()), "SSL_CERT_FILE": str(tmp_path / "ca.pem")}
    procfile = f"web: {child(server, str(tmp_path / 'server.pem'))}\n"
    with Procrun(tmp_path, procfile, env=env, toml=toml) as pr:
        pr.wait_for_line(r"process.ready .*probe='http https://localhost:\d+/' process=web.1")
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


# Sends WATCHDOG=1 every 50 ms until the trigger file exists, then stops pinging (hung).
PINGER = """
import os, pathlib, socket, sys, time
trigger = pathlib.Path(sys.argv[1])
print("pinging", os.getpid(), flush=True)
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    while not trigger.exists():
        s.sendto(b"WATCHDOG=1", os.environ["NOTIFY_SOCKET"])
        time.sleep(0.05)
print("hung", flush=True)
time.sleep(3600)
"""


def test_a_watchdog_probe_restarts_a_process_that_stops_pinging(tmp_path: Path) -> None:
    pinger = write_script(tmp_path, "pinger.py", PINGER)
    trigger = tmp_path / "hang-now"
    toml = '[processes.app]\nalive = { watchdog = "0.5s" }\nmin_uptime = "0.1s"\ngrace = "2s"\n'
    with Procrun(tmp_path, f"app: {child(pinger, str(trigger))}\n", toml=toml) as pr:
        first = pr.wait_for_line(r"app.1 +\| pinging (\d+)").group(1)
        pr.wait_for_line(r"process.running .*process=app.1")
        trigger.touch()
        pr.wait_for_line(r"app.1 +\| hung")
        pr.wait_for_line(r"liveness.failed .*process=app.1 reason='no WATCHDOG=1 for 0.5 s'")
        pr.wait_for_line(r"process.restarting .*process=app.1")
        trigger.unlink()
        assert pr.wait_for_line(r"app.1 +\| pinging (\d+)").group(1) != first
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


DEPENDENCY = """
import os, sys, time
print("dependency up", os.getpid(), flush=True)
time.sleep(3600)
"""


def test_restart_with_restarts_only_the_dependents_that_ask_for_it(tmp_path: Path) -> None:
    dependency = write_script(tmp_path, "dependency.py", DEPENDENCY)
    recorder = Path(__file__).parents[1] / "children" / "recorder.py"
    procfile = f"db: {child(dependency)}\nfollower: {child(recorder)}\nloner: {child(recorder)}\n"
    toml = """
        [defaults]
        min_uptime = "0.1s"
        [processes.follower]
        depends_on = ["db"]
        restart_with = true
        [processes.loner]
        depends_on = ["db"]
    """
    with Procrun(tmp_path, procfile, toml=toml) as pr:
        db = int(pr.wait_for_line(r"db.1 +\| dependency up (\d+)").group(1))
        pr.wait_for_line(r"follower.1 +\| leader (\d+) ready")
        loner = pr.wait_for_line(r"loner.1 +\| leader (\d+) ready").group(1)
        pr.wait_for_line(r"process.running .*process=follower.1")
        pr.wait_for_line(r"process.running .*process=loner.1")
        os.kill(db, signal.SIGKILL)  # the dependency crashes
        pr.wait_for_line(r"process.restarting .*process=db.1")
        pr.wait_for_line(r"follower.1 +\| leader \d+ got SIGTERM")  # its own stop sequence
        pr.wait_for_line(r"db.1 +\| dependency up")
        pr.wait_for_line(r"follower.1 +\| leader \d+ ready")  # again, once db is up again
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0
        pr.rest()
    # Left alone by default: the loner's first run is the one the shutdown stops.
    assert re.search(rf"loner.1 +\| leader {loner} got SIGTERM", pr.transcript())
    assert len(re.findall(r"loner.1 +\| leader \d+ ready", pr.transcript())) == 1

"""Heroku's `migrate && gunicorn ...`: whatever the command's shape, the program that runs for a
long time gets the stop signal and its grace. Real shells, a real gunicorn, real signals."""

from __future__ import annotations

import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.app.redisserver import free_port
from tests.harness import Procrun, child, write_script

RECORDER = Path(__file__).parent / "children" / "recorder.py"
FIRST_STEP = """
import signal, sys, time
def stop(signum, frame):
    print("first step got", signal.Signals(signum).name, flush=True)
    sys.exit(1)
signal.signal(signal.SIGTERM, stop)
print("first step running", flush=True)
while True:
    time.sleep(3600)
"""
WSGI_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def test_a_stop_during_an_earlier_step_reaches_that_step(tmp_path: Path) -> None:
    first = write_script(tmp_path, "first.py", FIRST_STEP)
    procfile = f"web: {child(first)} && {child(RECORDER)}\n"
    with Procrun(tmp_path, procfile, toml='[processes.web]\ngrace = "20s"\n') as pr:
        pr.wait_for_line(r"web.1 +\| first step running")
        pr.signal(signal.SIGTERM)
        pr.wait_for_line(r"signal.sent .*process=web.1 signal=SIGTERM target=step")
        pr.wait_for_line(r"web.1 +\| first step got SIGTERM")
        assert pr.wait() == 0
        pr.rest()
    assert "SIGKILL" not in pr.transcript(), "the running step must stop on the stop signal"


def test_the_last_step_leads_and_gets_the_stop_signal_alone(tmp_path: Path) -> None:
    procfile = f"web: {sys.executable} -c pass && {child(RECORDER, '--pool', '1')}\n"
    with Procrun(tmp_path, procfile) as pr:
        pr.wait_for_line(r"web.1 +\| leader \d+ ready")
        pr.signal(signal.SIGTERM)
        pr.wait_for_line(r"signal.sent .*process=web.1 signal=SIGTERM target=leader")
        pr.wait_for_line(r"web.1 +\| leader \d+ got SIGTERM")
        assert pr.wait() == 0
        pr.rest()
    assert "pool" not in "".join(line for line in pr.transcript().splitlines() if "got" in line)


def answered(url: str, deadline_seconds: float = 20.0) -> None:
    """Wait until `url` answers at all (any status), with a deadline."""
    give_up = time.monotonic() + deadline_seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > give_up:
                raise AssertionError(f"{url} never answered") from None
            time.sleep(0.05)  # poll interval of a wait with a deadline


def test_migrate_then_gunicorn_stops_gracefully_and_is_ready_by_notify(tmp_path: Path) -> None:
    write_script(tmp_path, "wsgiapp.py", WSGI_APP)
    procfile = (
        f"web: {sys.executable} -c \"print('migrated')\" && gunicorn --no-control-socket "
        "--workers 1 --bind 127.0.0.1:$PORT wsgiapp:app\n"
    )
    with Procrun(tmp_path, procfile, env={"PORT": str(free_port())}) as pr:
        pr.wait_for_line(r"web.1 +\| migrated")
        pr.wait_for_line(r"process.ready .*probe=notify process=web.1")  # gunicorn's default
        # gunicorn notifies before its worker is up; a TERM that reaches a worker still forking
        # (it holds the master's handlers until it sets its own) is lost, and the master then
        # waits out its 30 s graceful timeout. A user's deploy does not stop within milliseconds.
        port = int(pr.wait_for_line(r"web.1 +\| .*Listening at: http://127.0.0.1:(\d+)").group(1))
        pr.wait_for_line(r"web.1 +\| .*Booting worker with pid")
        answered(f"http://127.0.0.1:{port}/")  # the worker serves: its own handlers are set
        pr.signal(signal.SIGTERM)
        pr.wait_for_line(r"signal.sent .*process=web.1 signal=SIGTERM target=leader")
        pr.wait_for_line(r"web.1 +\| .*Handling signal: term")
        pr.wait_for_line(r"web.1 +\| .*Shutting down: Master")
        assert pr.wait() == 0
        pr.rest()
    assert "SIGKILL" not in pr.transcript(), "gunicorn's graceful stop needs no SIGKILL"

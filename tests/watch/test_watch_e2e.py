"""`procrun start --watch` with real files, the real inotify watcher (watchfiles) and real
processes. Every wait is for a line; a second, later edit is the sentinel that proves an earlier
burst (or an ignored file) caused no restart of its own."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

from tests.app.redisserver import RedisServer
from tests.harness import Procrun

APP = """
import os, signal, sys, time
print("app up", os.getpid(), flush=True)
def stop(signum, frame):
    print("app got", signal.Signals(signum).name, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(3600)
"""
PROCFILE = f"app: {sys.executable} -u app.py\nother: {sys.executable} -u other.py\n"
TOML = """
[processes.app]
watch = ["*.py", "templates/"]
watch_ignore = ["other.py"]
max_restarts = 1
backoff = "0ms"

[processes.other]
watch = ["other.py"]
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "other.py").write_text(APP.replace("app ", "other "))
    (tmp_path / "templates").mkdir()
    (tmp_path / ".gitignore").write_text("generated/\n")
    (tmp_path / "generated").mkdir()
    return tmp_path


def edit(path: Path, text: str = "# edited\n") -> None:
    with path.open("a") as file:
        file.write(text)


def restarts(pr: Procrun) -> list[str]:
    return [line for line in pr.transcript().splitlines() if "watch.restarting" in line]


def test_five_quick_edits_are_one_restart_through_the_stop_signal(tmp_path: Path) -> None:
    project(tmp_path)
    with Procrun(tmp_path, PROCFILE, "--watch", toml=TOML) as pr:
        first = pr.wait_for_line(r"app.1 +\| app up (\d+)").group(1)
        pr.wait_for_line(r"other.1 +\| other up")
        pr.wait_for_line(r"watch.started")
        for number in range(5):  # one save touching five files, as fast as Python writes
            edit(tmp_path / ("app.py" if number % 2 else "helpers.py"))
        pr.wait_for_line(r"watch.restarting .*changed='app.py, helpers.py' processes=app.1")
        pr.wait_for_line(r"app.1 +\| app got SIGTERM")
        second = pr.wait_for_line(r"app.1 +\| app up (\d+)").group(1)
        assert second != first
        edit(tmp_path / "templates" / "base.html")  # the sentinel: a later, separate change
        pr.wait_for_line(r"watch.restarting .*changed=templates/base.html processes=app.1")
        pr.wait_for_line(r"app.1 +\| app up")
        assert len(restarts(pr)) == 2, pr.transcript()
        assert "other.1 | other got" not in pr.transcript()  # it watches other files
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


def test_ignored_files_restart_nothing(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    with Procrun(tmp_path, PROCFILE, "--watch", toml=TOML) as pr:
        pr.wait_for_line(r"app.1 +\| app up")
        pr.wait_for_line(r"watch.started")
        edit(tmp_path / "__pycache__" / "app.cpython-311.pyc")
        edit(tmp_path / "generated" / "schema.py")  # the project's .gitignore
        edit(tmp_path / ".app.py.swp")
        edit(tmp_path / "other.py")  # app's watch_ignore, but other's watch
        pr.wait_for_line(r"watch.restarting .*changed=other.py processes=other.1")
        edit(tmp_path / "app.py")  # the sentinel
        pr.wait_for_line(r"watch.restarting .*changed=app.py processes=app.1")
        assert len(restarts(pr)) == 2, pr.transcript()
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


def test_a_crash_on_the_new_code_waits_for_the_next_edit(tmp_path: Path) -> None:
    project(tmp_path)
    with Procrun(tmp_path, PROCFILE, "--watch", toml=TOML) as pr:
        pr.wait_for_line(r"app.1 +\| app up")
        pr.wait_for_line(r"watch.started")
        (tmp_path / "app.py").write_text("this is not python(\n")
        pr.wait_for_line(r"app.1 +\| SyntaxError")
        pr.wait_for_line(r"process.gave_up .*process=app.1")
        pr.wait_for_line(r"watch.waiting .*process=app.1")
        assert pr.proc.poll() is None, "a give-up while watching must not stop the formation"
        (tmp_path / "app.py").write_text(APP)
        pr.wait_for_line(r"watch.restarting .*processes=app.1")
        pr.wait_for_line(r"app.1 +\| app up")
        pr.signal(signal.SIGTERM)
        assert pr.wait() == 0


def test_without_watch_the_watcher_is_never_loaded(tmp_path: Path) -> None:
    """watchfiles (and pathspec) cost nothing unless --watch: not imported, not mapped."""
    probe = tmp_path / "maps.py"
    probe.write_text(
        "import os\n"
        "maps = open(f'/proc/{os.getppid()}/maps').read()\n"
        "print('rust notify mapped:', '_rust_notify' in maps, flush=True)\n"
    )
    toml = '[processes.probe]\nwatch = ["*.py"]\noneshot = true\n'
    procfile = f"probe: {sys.executable} maps.py\n"
    with Procrun(tmp_path, procfile, toml=toml) as pr:
        line = pr.wait_for_line(r"rust notify mapped: (\w+)")
        assert pr.wait() == 0
    assert line.group(1) == "False"
    assert not any(re.search(r"watch\.", seen) for seen in pr.transcript().splitlines())
    # The same check sees the watcher when it is on: it can fail.
    with Procrun(tmp_path, procfile, "--watch", toml=toml) as pr:
        assert pr.wait_for_line(r"rust notify mapped: (\w+)").group(1) == "True"
        pr.signal(signal.SIGTERM)
        pr.wait()


CELERY_APP = """
import os
from celery import Celery
app = Celery("tasks", broker=os.environ["BROKER_URL"])
"""


def test_a_watched_celery_worker_gets_its_warm_shutdown(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    try:
        (tmp_path / "tasks.py").write_text(CELERY_APP)
        procfile = (
            "worker: celery -A tasks worker -l info --pool solo --without-gossip "
            "--without-mingle --without-heartbeat\n"
        )
        toml = '[processes.worker]\nwatch = ["tasks.py"]\ngrace = "20s"\n'
        env = {"BROKER_URL": redis.url}
        with Procrun(tmp_path, procfile, "--watch", env=env, toml=toml) as pr:
            pr.wait_for_line(r"process.ready .*process=worker.1")
            pr.wait_for_line(r"watch.started")
            edit(tmp_path / "tasks.py")
            pr.wait_for_line(r"watch.restarting .*changed=tasks.py processes=worker.1")
            pr.wait_for_line(r"signal.sent .*process=worker.1 signal=SIGTERM target=leader")
            pr.wait_for_line(r"worker.1 +\| .*[Ww]arm shutdown")
            pr.wait_for_line(r"process.stopped .*process=worker.1")
            assert not seen(pr, "SIGKILL"), "a warm shutdown needs no SIGKILL"
            pr.wait_for_line(r"process.ready .*process=worker.1")
            pr.signal(signal.SIGTERM)
            assert pr.wait() == 0
    finally:
        redis.stop()


def seen(pr: Procrun, needle: str) -> bool:
    return needle in pr.transcript()

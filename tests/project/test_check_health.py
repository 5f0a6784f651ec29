"""`procrun check` through the real CLI: the probe lines, the start order, the notes; and bad
health settings as one line on stderr, exit 2, before anything starts."""

from pathlib import Path

import pytest

from tests.harness import Procrun

PROCFILE = """\
redis: sleep 60
web: gunicorn app:app
worker: celery -A app worker -l info
beat: celery -A app beat
jobs: celery -A app worker -n jobs@%h
"""
TOML = """\
[processes.redis]
ready = { tcp = "127.0.0.1:$PORT", timeout = "2s" }
ready_timeout = "30s"
interval = "500ms"

[processes.web]
depends_on = ["redis"]
alive = { http = "http://127.0.0.1:$PORT/health", status = 200, every = "10s" }

[processes.worker]
depends_on = { redis = "ready" }
restart_with = true
alive = { exec = "celery -A app inspect ping -d celery@$HOSTNAME", timeout = "10s" }

[processes.beat]
depends_on = ["worker"]
alive = { watchdog = "30s" }
"""


def test_check_shows_probes_dependencies_and_start_order(tmp_path: Path) -> None:
    with Procrun(tmp_path, PROCFILE, command=("check",), toml=TOML) as check:
        assert check.wait() == 0
        out = check.rest()
    assert "Traceback" not in check.stderr
    toml = tmp_path / "procrun.toml"
    expected = [
        f"    ready: tcp 127.0.0.1:$PORT ({toml}:2), timeout 30 s; tries 2 s each, "
        "at most 0.5 s apart",
        "    ready: notify (default for gunicorn), timeout 60 s",
        f"    alive: http http://127.0.0.1:$PORT/health status 200 every 10 s, timeout 5 s, "
        f"3 failures ({toml}:8)",
        "    depends on: redis (ready)",
        r'    ready: log "\S+@\S+ ready\." (default for a Celery worker), timeout 60 s',
        '    alive: exec "celery -A app inspect ping -d celery@$HOSTNAME" every 30 s, '
        f"timeout 10 s, 3 failures ({toml}:13)",
        "    depends on: redis (ready); restarted when a dependency restarts",
        "    ready: none (min_uptime 1 s)",
        f"    alive: watchdog, WATCHDOG=1 at least every 30 s ({toml}:17)",
        "    depends on: worker (ready)",
        "start order: redis, jobs; then web, worker; then beat",
        'note: jobs: no readiness default: Celery logs "celery@<host> ready." only at '
        '--loglevel INFO; add "-l info" or set ready in procrun.toml',
    ]
    missing = [line for line in expected if line not in out]
    assert missing == [], "\n".join(out)
    # Each probe line sits under its own process.
    assert out.index("    ready: notify (default for gunicorn), timeout 60 s") == (
        out.index("web.1: gunicorn app:app (Procfile:2)") + 3  # under "stop signal:"
    )


def test_check_without_dependencies_has_no_start_order(tmp_path: Path) -> None:
    with Procrun(tmp_path, "web: gunicorn app:app\n", command=("check",)) as check:
        assert check.wait() == 0
        out = check.rest()
    assert "    ready: notify (default for gunicorn), timeout 60 s" in out
    assert not any(line.startswith("start order:") for line in out)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[processes.web]\nready = { tpc = "127.0.0.1:$PORT" }\n',
            'procrun.toml:2: ready: unknown key "tpc"; did you mean "tcp"?; expected one of tcp, '
            "http, log, exec, notify",
        ),
        (
            '[processes.web]\nready = { log = "[unclosed" }\n',
            'procrun.toml:2: ready.log: invalid regex "[unclosed": unterminated character set '
            "at position 0",
        ),
        (
            '[processes.web]\ndepends_on = ["wroker"]\n',
            'procrun.toml:2: depends_on: no Procfile entry "wroker"; did you mean "worker"?',
        ),
        (
            '[processes.web]\ndepends_on = ["worker"]\n[processes.worker]\ndepends_on = ["web"]\n',
            "procrun.toml:2: depends_on: cycle web -> worker -> web",
        ),
        (
            '[defaults]\ndepends_on = ["worker"]\n',
            "procrun.toml:2: depends_on belongs in [processes.<name>], not [defaults]",
        ),
    ],
)
@pytest.mark.parametrize("command", ["check", "start"])
def test_bad_health_settings_are_one_line_and_exit_2(
    tmp_path: Path, command: str, toml: str, message: str
) -> None:
    procfile = "web: sleep 60\nworker: sleep 60\n"
    with Procrun(tmp_path, procfile, command=(command,), toml=toml) as procrun:
        code = procrun.wait()
        out = procrun.rest()
    assert code == 2
    assert procrun.stderr == f"procrun: {tmp_path}/{message}\n"
    assert out == [], "nothing started"

"""ready, ready_timeout, interval, alive, restart_with in procrun.toml: every form, every error."""

from dataclasses import replace
from pathlib import Path

import pytest

from procrun.errors import ConfigError
from procrun.project.config import load_config, settings_for
from procrun.settings import LivenessProbe, Probe, ProbeKind, ProcessSettings

TCP, HTTP, LOG, EXEC = ProbeKind.TCP, ProbeKind.HTTP, ProbeKind.LOG, ProbeKind.EXEC
NOTIFY, WATCHDOG = ProbeKind.NOTIFY, ProbeKind.WATCHDOG


def settings_of(tmp_path: Path, body: str, command: str = "python app.py") -> ProcessSettings:
    """[processes.web] with `body` (on line 2 onwards), resolved for `command`."""
    (tmp_path / "procrun.toml").write_text(f"[processes.web]\n{body}\n")
    return settings_for("web", command, load_config(tmp_path))


def error_of(tmp_path: Path, text: str) -> str:
    (tmp_path / "procrun.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    return str(info.value).removeprefix(f"{tmp_path}/")


ORIGIN = "procrun.toml:2"


@pytest.mark.parametrize(
    ("body", "probe"),
    [
        ('ready = { tcp = "127.0.0.1:$PORT" }', Probe(TCP, "127.0.0.1:$PORT", origin=ORIGIN)),
        (
            'ready = { tcp = "[::1]:8000", timeout = "2s" }',
            Probe(TCP, "[::1]:8000", None, 2.0, ORIGIN),
        ),
        (
            'ready = { http = "http://127.0.0.1:$PORT/health", status = 200 }',
            Probe(HTTP, "http://127.0.0.1:$PORT/health", 200, origin=ORIGIN),
        ),
        (
            'ready = { http = "HTTPS://example.com/", timeout = "500ms" }',
            Probe(HTTP, "HTTPS://example.com/", None, 0.5, ORIGIN),
        ),
        ('ready = { log = "Listening at: " }', Probe(LOG, "Listening at: ", origin=ORIGIN)),
        (
            'ready = { exec = "pg_isready -h localhost", timeout = "5s" }',
            Probe(EXEC, "pg_isready -h localhost", None, 5.0, ORIGIN),
        ),
        ("ready = { notify = true }", Probe(NOTIFY, origin=ORIGIN)),
        ("ready = false", None),
        # The table form: the probe's own header is its origin.
        (
            '[processes.web.ready]\ntcp = "localhost:5000"',
            Probe(TCP, "localhost:5000", origin=ORIGIN),
        ),
    ],
)
def test_ready_forms(tmp_path: Path, body: str, probe: Probe | None) -> None:
    ready = settings_of(tmp_path, body).ready
    if probe is None:
        assert ready is None
    else:
        assert ready == replace(probe, origin=f"{tmp_path}/{ORIGIN}")


@pytest.mark.parametrize(
    ("body", "liveness"),
    [
        (
            'alive = { exec = "celery -A app inspect ping -d celery@$HOSTNAME", every = "30s", '
            'timeout = "10s", failures = 3 }',
            LivenessProbe(
                Probe(EXEC, "celery -A app inspect ping -d celery@$HOSTNAME", None, 10.0), 30.0, 3
            ),
        ),
        (
            'alive = { http = "http://127.0.0.1:$PORT/", status = 204, every = "10s" }',
            LivenessProbe(Probe(HTTP, "http://127.0.0.1:$PORT/", 204), 10.0, 3),
        ),
        (
            'alive = { tcp = "127.0.0.1:6379", failures = 1 }',
            LivenessProbe(Probe(TCP, "127.0.0.1:6379"), 30.0, 1),
        ),
        ('alive = { watchdog = "30s" }', LivenessProbe(Probe(WATCHDOG, timeout_seconds=30.0))),
        ('alive = { watchdog = "1m30s" }', LivenessProbe(Probe(WATCHDOG, timeout_seconds=90.0))),
        ("alive = false", None),
    ],
)
def test_alive_forms(tmp_path: Path, body: str, liveness: LivenessProbe | None) -> None:
    alive = settings_of(tmp_path, body).alive
    if liveness is None:
        assert alive is None
    else:
        probe = replace(liveness.probe, origin=f"{tmp_path}/{ORIGIN}")
        assert alive == replace(liveness, probe=probe)


def test_ready_timeout_interval_and_restart_with(tmp_path: Path) -> None:
    settings = settings_of(
        tmp_path, 'ready_timeout = "2m"\ninterval = "250ms"\nrestart_with = true'
    )
    assert (settings.ready_timeout_seconds, settings.ready_interval_seconds) == (120.0, 0.25)
    assert settings.restart_with is True
    assert settings_of(tmp_path, "").restart_with is False


def test_defaults_table_carries_probes(tmp_path: Path) -> None:
    (tmp_path / "procrun.toml").write_text(
        '[defaults]\nready = { tcp = "127.0.0.1:$PORT" }\nalive = { watchdog = "10s" }\n'
        "[processes.beat]\nalive = false\n"
    )
    config = load_config(tmp_path)
    web = settings_for("web", "python app.py", config)
    assert web.ready == Probe(TCP, "127.0.0.1:$PORT", origin=f"{tmp_path}/procrun.toml:2")
    origin = f"{tmp_path}/procrun.toml:3"
    assert web.alive == LivenessProbe(Probe(WATCHDOG, timeout_seconds=10.0, origin=origin))
    assert settings_for("beat", "python beat.py", config).alive is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'ready = { tpc = "127.0.0.1:5000" }',
            'ready: unknown key "tpc"; did you mean "tcp"?; expected one of tcp, http, log, exec, '
            "notify",
        ),
        (
            'alive = { exce = "true" }',
            'alive: unknown key "exce"; did you mean "exec"?; expected one of tcp, http, exec, '
            "watchdog",
        ),
        ("ready = {}", "ready: no probe kind: expected one of tcp, http, log, exec, notify"),
        (
            'ready = { timeout = "5s" }',
            "ready: no probe kind: expected one of tcp, http, log, exec, notify",
        ),
        (
            'ready = { tcp = "a:1", http = "http://a" }',
            "ready: one probe kind per table, got tcp and http",
        ),
        (
            'ready = { tcp = "a:1", status = 200 }',
            'ready: unknown key "status" in a tcp probe; expected one of tcp, timeout',
        ),
        (
            'ready = { http = "http://a", stauts = 200 }',
            'ready: unknown key "stauts" in an http probe; did you mean "status"?; expected one of '
            "http, status, timeout",
        ),
        (
            'ready = { exec = "true", every = "1s" }',
            'ready: unknown key "every" in an exec probe; expected one of exec, timeout',
        ),
        (
            'ready = { log = "x", timeout = "1s" }',
            'ready: a log probe takes no other key, got "timeout"',
        ),
        (
            "ready = { notify = true, timeout = 1 }",
            'ready: a notify probe takes no other key, got "timeout"',
        ),
        (
            'alive = { watchdog = "30s", every = "1s" }',
            'alive: a watchdog probe takes no other key, got "every"',
        ),
        (
            "ready = true",
            'ready must be a probe table like { tcp = "127.0.0.1:$PORT" }, or false for none, got '
            "true",
        ),
        (
            'ready = "tcp"',
            'ready must be a probe table like { tcp = "127.0.0.1:$PORT" }, or false for none, got '
            '"tcp"',
        ),
        (
            "alive = true",
            'alive must be a probe table like { exec = "...", every = "30s" }, or false for none, '
            "got true",
        ),
        ('ready = { tcp = "" }', 'ready.tcp must be "host:port" like "127.0.0.1:$PORT", got ""'),
        (
            "ready = { tcp = 5000 }",
            'ready.tcp must be "host:port" like "127.0.0.1:$PORT", got 5000',
        ),
        (
            'ready = { tcp = "localhost" }',
            'ready.tcp: "localhost" is not "host:port" like "127.0.0.1:$PORT"',
        ),
        (
            'ready = { tcp = ":5000" }',
            'ready.tcp: ":5000" is not "host:port" like "127.0.0.1:$PORT"',
        ),
        (
            'ready = { tcp = "localhost:http" }',
            'ready.tcp: port "http" must be 1-65535 or like $PORT',
        ),
        (
            'ready = { tcp = "localhost:70000" }',
            'ready.tcp: port "70000" must be 1-65535 or like $PORT',
        ),
        (
            'ready = { http = "" }',
            'ready.http must be a URL like "http://127.0.0.1:$PORT/health", got ""',
        ),
        (
            'ready = { http = "127.0.0.1:5000/health" }',
            'ready.http: "127.0.0.1:5000/health" is not an http:// or https:// URL',
        ),
        (
            'ready = { http = "http://a", status = 99 }',
            "ready.status must be an HTTP status from 100 to 599, got 99",
        ),
        (
            'ready = { http = "http://a", status = "200" }',
            'ready.status must be an HTTP status from 100 to 599, got "200"',
        ),
        (
            'ready = { http = "http://a", status = true }',
            "ready.status must be an HTTP status from 100 to 599, got true",
        ),
        (
            'ready = { log = "" }',
            'ready.log must be a regular expression matching a line the process prints, got ""',
        ),
        (
            'ready = { log = "(" }',
            'ready.log: invalid regex "(": missing ), unterminated subpattern at position 0',
        ),
        (
            'ready = { exec = " " }',
            'ready.exec must be a command that exits 0 when the process is fine, got " "',
        ),
        ("ready = { notify = false }", "ready.notify = false is no probe: use ready = false"),
        ('ready = { notify = "yes" }', 'ready.notify must be true, got "yes"'),
        (
            'ready = { exec = "true", timeout = "0s" }',
            'ready.timeout must be more than 0 s, got "0s"',
        ),
        (
            'ready = { exec = "true", timeout = "soon" }',
            "ready.timeout: invalid duration 'soon': use seconds (30) or a string like \"30s\", "
            '"500ms", "10m"',
        ),
        (
            'ready = { watchdog = "30s" }',
            'ready: watchdog is a liveness probe: write alive = { watchdog = "30s" }',
        ),
        (
            'alive = { log = "Listening" }',
            "alive: a log probe cannot check liveness (a line printed once says nothing about "
            "later); use tcp, http, exec, watchdog",
        ),
        (
            "alive = { notify = true }",
            "alive: notify (READY=1, sent once) is a readiness probe; for liveness use "
            'alive = { watchdog = "30s" }, which expects WATCHDOG=1 pings',
        ),
        ('alive = { watchdog = "0s" }', 'alive.watchdog must be more than 0 s, got "0s"'),
        ('alive = { exec = "true", every = 0 }', "alive.every must be more than 0 s, got 0"),
        (
            'alive = { exec = "true", failures = 0 }',
            "alive.failures must be a whole number, 1 or more, got 0",
        ),
        (
            'alive = { exec = "true", failures = 1.5 }',
            "alive.failures must be a whole number, 1 or more, got 1.5",
        ),
        (
            'alive = { exec = "true", failures = true }',
            "alive.failures must be a whole number, 1 or more, got true",
        ),
        ('ready_timeout = "0s"', 'ready_timeout must be more than 0 s, got "0s"'),
        (
            "interval = -1",
            "interval: invalid duration -1: use seconds (30) or a string like "
            '"30s", "500ms", "10m"',
        ),
        ('restart_with = "yes"', 'restart_with must be true or false, got "yes"'),
    ],
)
def test_probe_errors(tmp_path: Path, body: str, message: str) -> None:
    assert error_of(tmp_path, f"# web\n[processes.web]\n{body}\n") == f"procrun.toml:3: {message}"


def test_probe_errors_name_the_defaults_line(tmp_path: Path) -> None:
    text = '[defaults]\ngrace = "5s"\nready = { tcp = "nowhere" }\n'
    assert error_of(tmp_path, text) == (
        'procrun.toml:3: ready.tcp: "nowhere" is not "host:port" like "127.0.0.1:$PORT"'
    )

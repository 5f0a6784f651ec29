"""app.settings and app.logsetup without any server: environment parsing, the TLS options every
client gets, password redaction, and the warning an opted-out TLS check gives at every start."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from app.logsetup import configure_logging, log_startup
from app.settings import (
    DEFAULT_REDIS_URL,
    LogFormat,
    Settings,
    SettingsError,
    TlsMode,
    load_settings,
    redact,
    redact_url,
)

PASSWORD = "correct-horse-battery"
TLS_URL = f"rediss://:{PASSWORD}@cache.example.net:6380/0"


@pytest.fixture
def ca_file(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("not parsed by the settings\n")
    return str(path)


def test_defaults_point_everything_at_one_local_redis() -> None:
    settings = load_settings({}, stdout_isatty=False)
    assert settings.redis_url == settings.broker_url == settings.result_backend == DEFAULT_REDIS_URL
    assert settings.log_format is LogFormat.JSON
    assert settings.tick_seconds == 60
    assert settings.worker_concurrency == 2
    assert settings.ssl_options(settings.broker_url) is None
    assert settings.startup_warnings() == []


def test_logs_are_text_on_a_terminal_unless_log_format_says_otherwise() -> None:
    assert load_settings({}, stdout_isatty=True).log_format is LogFormat.TEXT
    assert load_settings({"LOG_FORMAT": "json"}, stdout_isatty=True).log_format is LogFormat.JSON


def test_celery_urls_override_redis_url() -> None:
    settings = load_settings(
        {
            "REDIS_URL": "redis://data:6379/0",
            "CELERY_BROKER_URL": "redis://broker:6379/1",
            "CELERY_RESULT_BACKEND": "redis://results:6379/2",
        }
    )
    assert settings.urls == {
        "redis": "redis://data:6379/0",
        "broker": "redis://broker:6379/1",
        "result_backend": "redis://results:6379/2",
    }


def test_rediss_verifies_certificate_and_hostname_with_system_cas_by_default() -> None:
    settings = load_settings({"REDIS_URL": TLS_URL})
    options = settings.ssl_options(settings.broker_url)
    assert options == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True}
    assert settings.tls_mode(settings.result_backend) is TlsMode.VERIFIED
    assert settings.startup_warnings() == []


def test_rediss_with_a_ca_bundle_adds_it_for_every_client(ca_file: str) -> None:
    settings = load_settings({"REDIS_URL": TLS_URL, "REDIS_CA_CERTS": ca_file})
    for url in settings.urls.values():
        assert settings.ssl_options(url) == {
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
            "ssl_check_hostname": True,
            "ssl_ca_certs": ca_file,
        }
    options = settings.redis_options(settings.redis_url)
    assert options["ssl_ca_certs"] == ca_file
    assert options["health_check_interval"] > 0
    assert options["socket_keepalive"] is True
    assert options["socket_timeout"] > 0


def test_tls_is_per_url() -> None:
    settings = load_settings({"REDIS_URL": TLS_URL, "CELERY_BROKER_URL": "redis://internal:6379"})
    assert settings.ssl_options(settings.broker_url) is None
    assert settings.ssl_options(settings.redis_url) is not None


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes"])
def test_insecure_opt_out_disables_checks_and_warns(value: str) -> None:
    settings = load_settings({"REDIS_URL": TLS_URL, "REDIS_TLS_INSECURE": value})
    assert settings.ssl_options(settings.redis_url) == {
        "ssl_cert_reqs": ssl.CERT_NONE,
        "ssl_check_hostname": False,
    }
    assert settings.tls_mode(settings.broker_url) is TlsMode.UNVERIFIED
    (warning,) = settings.startup_warnings()
    assert "NOT verified" in warning
    assert "REDIS_TLS_INSECURE" in warning


def test_the_insecure_warning_is_logged_at_every_start() -> None:
    settings = load_settings({"REDIS_URL": TLS_URL, "REDIS_TLS_INSECURE": "1"})
    for _ in range(2):
        with capture_logs() as events:
            log_startup(settings, "worker")
        warnings = [e for e in events if e["log_level"] == "warning"]
        assert [e["event"] for e in warnings] == ["app.config_warning"]
        assert "NOT verified" in warnings[0]["warning"]


def test_startup_log_names_tls_modes_and_redacts_passwords() -> None:
    settings = load_settings({"REDIS_URL": TLS_URL})
    with capture_logs() as events:
        log_startup(settings, "web")
    (event,) = events
    assert event["event"] == "app.configured"
    assert event["redis"] == "rediss://:***@cache.example.net:6380/0"
    assert event["tls"] == {"redis": "verified", "broker": "verified", "result_backend": "verified"}
    assert PASSWORD not in repr(event)


def test_tls_variables_without_rediss_warn_that_tls_is_not_in_use(ca_file: str) -> None:
    settings = load_settings({"REDIS_CA_CERTS": ca_file, "REDIS_TLS_INSECURE": "true"})
    (warning,) = settings.startup_warnings()
    assert "REDIS_CA_CERTS and REDIS_TLS_INSECURE set but no URL uses rediss://" in warning


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"REDIS_CA_CERTS": "/nonexistent/ca.pem"}, "REDIS_CA_CERTS: no such file"),
        ({"REDIS_TLS_INSECURE": "maybe"}, "REDIS_TLS_INSECURE: expected 1/true or 0/false"),
        ({"REDIS_URL": f"amqp://guest:{PASSWORD}@rabbit//"}, "REDIS_URL: expected a redis://"),
        ({"CELERY_BROKER_URL": "redis://host:port/0"}, "CELERY_BROKER_URL: not a valid URL"),
        (
            {"REDIS_URL": TLS_URL + "?ssl_cert_reqs=none"},
            "REDIS_URL: remove ssl_cert_reqs from the URL",
        ),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT: expected json|text"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL: expected one of"),
        ({"TICK_SECONDS": "0"}, "TICK_SECONDS: expected a positive number"),
        ({"TICK_SECONDS": "nan"}, "TICK_SECONDS: expected a positive number"),
        ({"CELERY_CONCURRENCY": "1.5"}, "CELERY_CONCURRENCY: expected a positive whole number"),
    ],
)
def test_bad_values_name_the_variable_and_never_the_password(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(environ)
    assert message in str(error.value)
    assert PASSWORD not in str(error.value)


def test_redaction_of_urls_and_known_secrets() -> None:
    assert redact_url("redis://:s3cr3t@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("rediss://default:s3cr3t@host:6380") == "rediss://default:***@host:6380"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"
    text = "cannot reach redis://:a@h1/0 nor rediss://u:b%40c@h2:1/2; gave up"
    assert redact(text) == "cannot reach redis://:***@h1/0 nor rediss://u:***@h2:1/2; gave up"
    assert redact(f"AUTH {PASSWORD} failed", frozenset({PASSWORD})) == "AUTH *** failed"


def test_secrets_are_the_passwords_of_all_urls_raw_and_decoded() -> None:
    settings = Settings(
        redis_url="redis://:pass%2Fword1@a:1/0",
        broker_url="redis://user:broker-secret@b:2/0",
        result_backend="redis://c:3/0",
    )
    assert settings.secrets() == {"pass%2Fword1", "pass/word1", "broker-secret"}
    assert Settings(redis_url="redis://:short@a:1/0").secrets() == frozenset()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the process's logging and structlog configuration back after configure_logging."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers, root.level = handlers, level
    structlog.configure(**config)


@pytest.mark.usefixtures("restore_logging")
def test_json_logs_redact_passwords_in_messages_and_tracebacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings({"REDIS_URL": TLS_URL, "LOG_FORMAT": "json"})
    configure_logging(settings)
    structlog.get_logger("test").info("connecting", url=TLS_URL, nested={"urls": [TLS_URL]})
    try:
        raise ConnectionError(f"lost {TLS_URL} (password {PASSWORD})")
    except ConnectionError:
        logging.getLogger("celery.worker").exception("stdlib logger, as Celery's")
    output = capsys.readouterr().out
    events = [json.loads(line) for line in output.splitlines()]
    assert [e["event"] for e in events] == ["connecting", "stdlib logger, as Celery's"]
    assert events[0]["url"] == "rediss://:***@cache.example.net:6380/0"
    assert events[0]["nested"] == {"urls": ["rediss://:***@cache.example.net:6380/0"]}
    assert events[1]["logger"] == "celery.worker"
    assert "ConnectionError: lost rediss://:***@cache.example.net:6380/0" in events[1]["exception"]
    assert PASSWORD not in output


@pytest.mark.usefixtures("restore_logging")
def test_text_logs_for_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(load_settings({"LOG_FORMAT": "text"}))
    logging.getLogger("gunicorn.error").info("Listening at: %s", "http://0.0.0.0:8000")
    (line,) = capsys.readouterr().out.splitlines()
    assert "Listening at: http://0.0.0.0:8000" in line
    assert not line.startswith("{")

"""The app on a TLS redis-server with a password (certificates from trustme): web, worker and
Beat connect with verification against REDIS_CA_CERTS; a wrong CA fails with a clear error; the
password and kombu's insecure-TLS warning never appear in any output line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from app.settings import load_settings
from app.store import TICKS_KEY, connect
from tests.app.formation import AppFormation, app_environment, http, post_json
from tests.app.redisserver import RedisServer, make_ca, server_certificate
from tests.harness import wait_for_state

PASSWORD = "tls-test-pa55word-7f3a"
KOMBU_INSECURE_WARNING = "Secure redis scheme specified (rediss) with no ssl options"
VERIFY_FAILED = "certificate verify failed"


@dataclass(frozen=True)
class TlsRedis:
    server: RedisServer
    ca: Path
    wrong_ca: Path


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    directory = tmp_path_factory.mktemp("tls")
    files = server_certificate(directory, make_ca(directory, "issuer"))
    make_ca(directory, "stranger")
    server = RedisServer(directory, tls=files, password=PASSWORD)
    yield TlsRedis(server, files.ca, directory / "stranger.pem")
    server.stop()


def assert_clean(output: str) -> None:
    assert PASSWORD not in output
    assert KOMBU_INSECURE_WARNING not in output


@pytest.fixture(scope="module")
def verified(
    tls_redis: TlsRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppFormation]:
    env = app_environment(tls_redis.server.url, REDIS_CA_CERTS=str(tls_redis.ca))
    with AppFormation(tmp_path_factory.mktemp("procrun"), env) as procrun:
        procrun.wait_until_web_listens()
        procrun.wait_until_worker_ready()
        procrun.wait_for_line(r"beat\.1 .*beat: Acquired lock", 30)
        yield procrun


def test_web_and_worker_connect_with_verification(verified: AppFormation) -> None:
    reply = http("GET", f"{verified.base_url}/health")
    assert reply.status == 200, reply.body
    assert reply.body["workers"]["ok"] is True
    configured = verified.wait_for_line(r'web\.1 .*"event": "app.configured"').string
    assert '"tls": {"redis": "verified", "broker": "verified", "result_backend": "verified"}' in (
        configured
    )


def test_jobs_and_results_go_over_tls(verified: AppFormation) -> None:
    assert post_json(f"{verified.base_url}/jobs", {"seconds": 0, "job_id": "tls-1"}).status == 202

    def succeeded() -> bool:
        return bool(http("GET", f"{verified.base_url}/jobs/tls-1").body["state"] == "SUCCESS")

    wait_for_state(succeeded, "job tls-1 done")
    assert http("GET", f"{verified.base_url}/jobs/tls-1").body["effect_recorded"] is True


def test_beat_schedules_over_tls(verified: AppFormation, tls_redis: TlsRedis) -> None:
    with tls_redis.server.client() as client:
        wait_for_state(lambda: client.llen(TICKS_KEY) >= 2, "two ticks over TLS")


def test_no_password_and_no_insecure_warning_in_any_line(verified: AppFormation) -> None:
    assert verified.stop() == 0
    output = "\n".join([verified.transcript(), *verified.rest(), verified.stderr])
    assert "Connected to rediss://:***@localhost" in output  # the worker did log its broker URL
    assert_clean(output)


def test_a_wrong_ca_fails_clearly(tls_redis: TlsRedis, tmp_path: Path) -> None:
    env = app_environment(tls_redis.server.url, REDIS_CA_CERTS=str(tls_redis.wrong_ca))
    with AppFormation(tmp_path, env, "web", "worker") as procrun:
        error = procrun.wait_for_line(r"worker\.1 .*Cannot connect to rediss://:\*+@localhost.*")
        assert VERIFY_FAILED in error.string
        procrun.wait_until_web_listens()
        reply = http("GET", f"{procrun.base_url}/health")
        assert reply.status == 503
        assert VERIFY_FAILED in reply.body["redis"]["error"]
        assert VERIFY_FAILED in reply.body["workers"]["error"]
        procrun.stop()
        assert_clean("\n".join([procrun.transcript(), *procrun.rest(), procrun.stderr]))


def test_the_hostname_is_checked(tls_redis: TlsRedis) -> None:
    """The certificate names localhost only: 127.0.0.1 is the same server, but not who it says."""
    url = tls_redis.server.url.replace("@localhost:", "@127.0.0.1:")
    settings = load_settings({"REDIS_URL": url, "REDIS_CA_CERTS": str(tls_redis.ca)})
    with connect(settings) as client, pytest.raises(redis.ConnectionError, match="mismatch"):
        client.ping()


def test_the_insecure_opt_out_connects_without_a_ca(tls_redis: TlsRedis) -> None:
    settings = load_settings({"REDIS_URL": tls_redis.server.url, "REDIS_TLS_INSECURE": "1"})
    with connect(settings) as client:
        assert client.ping()
    with (
        connect(load_settings({"REDIS_URL": tls_redis.server.url})) as client,
        pytest.raises(redis.ConnectionError, match=VERIFY_FAILED),
    ):
        client.ping()  # the system CAs do not know the test CA

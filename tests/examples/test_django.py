"""The Django example end to end: its own Procfile and procrun.toml under real procrun, with real
gunicorn, Celery worker and Beat (RedBeat), against a test redis-server, plain and TLS.

One formation on plain Redis serves the tests in order: the release ran first, a report's round
trip, `procrun status`, Beat's periodic task. Then one SIGTERM with a short shutdown deadline
while a report is being built and a slow request is in flight: the request gets its 200, the
report goes back to the queue and the next start (the same Redis and database) builds it, once.
The TLS formation does the round trip over a verified, password-protected connection. The image
is checked on its Dockerfile and run as PID 1 without Docker; the settings on their own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.app.container import Container, build_root, descendants
from tests.app.dockerfile import IgnoreRule, Image, parse_dockerignore
from tests.app.formation import REPO, HttpReply, http
from tests.app.redisserver import RedisServer, free_port, make_ca, server_certificate
from tests.examples.django_image import (
    check_no_secret_and_a_writable_data_dir,
    check_procrun_and_the_requirements_installed,
    check_procrun_is_pid_1_as_a_fixed_non_root_user,
    load_image,
    owners,
)
from tests.examples.django_site import (
    SECRET_KEY,
    STARTUP_DEADLINE_SECONDS,
    UNACKED_KEY,
    DjangoSite,
    applied_migrations,
    celery_configuration,
    django_environment,
    fetch,
    manage,
    no_traceback,
    pending_messages,
    report_row,
    tables,
)

# QUIT reaches the worker half of it after the SIGTERM (procrun caps the margin at half the
# window); Celery's cold shutdown then needs about 2.5 s on a quiet machine, more on a busy one.
SHUTDOWN_TIMEOUT_SECONDS = 14
# Outlasts that half with room to spare, so only QUIT's requeue can finish it (in full, again).
LONG_REPORT_SECONDS = 12
SLOW_REQUEST_SECONDS = 2  # well inside the deadline: gunicorn's graceful stop lets it finish
TLS_PASSWORD = "django-tls-pa55word-91c4"
SPAWNED = re.compile(r"process\.spawned .*process=(web|worker|beat)\.1")


@dataclass
class Site:
    procrun: DjangoSite
    redis: RedisServer
    data_dir: Path
    until_release: str  # procrun's output up to its release.succeeded line, nothing after it


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))  # the stop test's next start reuses it
    data_dir = tmp_path_factory.mktemp("data")
    env = django_environment(server.url, data_dir)
    shutdown_timeout = f"{SHUTDOWN_TIMEOUT_SECONDS}s"
    scratch = tmp_path_factory.mktemp("old")
    try:
        with DjangoSite(scratch, env, shutdown_timeout=shutdown_timeout) as old:
            # Lines are read in order and a wait reads no further than its match: what has been
            # read when release.succeeded matches is everything printed before it.
            old.wait_for_line(r"procrun .*release\.succeeded", STARTUP_DEADLINE_SECONDS)
            until_release = old.transcript()
            old.wait_until_up()
            yield Site(old, server, data_dir, until_release)
    finally:
        server.stop()


def test_the_release_migrates_and_collects_static_before_anything_starts(site: Site) -> None:
    before = site.until_release
    assert not SPAWNED.search(before), before
    assert re.search(r"release\.1 .*Applying reports\.0001_initial\.\.\. OK", before), before
    assert re.search(r"release\.1 .*\d+ static files copied to", before), before
    database = site.data_dir / "db.sqlite3"
    assert "reports_report" in tables(database)
    assert applied_migrations(database, "reports") == ["0001_initial"]
    static = site.data_dir / "static"
    assert (static / "staticfiles.json").is_file()  # the manifest of the hashed names
    assert (static / "admin" / "css" / "base.css").is_file()
    # WhiteNoise serves what the release collected, from gunicorn.
    served = fetch(f"{site.procrun.base_url}/static/admin/css/base.css")
    assert served == (200, (static / "admin" / "css" / "base.css").read_bytes())


def test_a_report_goes_from_the_view_through_the_worker_to_its_row(site: Site) -> None:
    assert http("GET", f"{site.procrun.base_url}/reports/nothing-here").status == 404
    site.procrun.submit("django-roundtrip-1", seconds=0.2)
    row = site.procrun.wait_until_built("django-roundtrip-1")
    assert (row["state"], row["attempts"], row["completions"]) == ("done", 1, 1), row
    assert row["worker"].startswith("celery@")
    # The same job id again is the same job: nothing queued a second time.
    again = http(
        "POST", f"{site.procrun.base_url}/reports?seconds=0&job_id=django-roundtrip-1", b""
    )
    assert again.status == 200, again.body
    assert again.body["duplicate"] is True
    assert http("POST", f"{site.procrun.base_url}/reports?seconds=-1", b"").status == 400


def test_status_shows_web_worker_and_beat_ready(site: Site) -> None:
    status = site.procrun.client("status", "--wait", "--timeout", "30s")
    out, err = status.communicate(timeout=STARTUP_DEADLINE_SECONDS)
    assert status.returncode == 0, out + err
    states = re.findall(r"^(\S+\.1)\s+(\S+)", out, re.MULTILINE)
    assert states == [("release.1", "EXITED")] + [
        (f"{n}.1", "RUNNING") for n in ("web", "worker", "beat")
    ], out


def test_beat_sends_the_periodic_purge_and_the_worker_runs_it(site: Site) -> None:
    site.procrun.wait_for_line(r"beat\.1 .*beat: Acquired lock")
    site.procrun.wait_for_line(r"beat\.1 .*Sending due task purge-expired-reports")
    site.procrun.wait_for_line(r"worker\.1 .*Task reports\.purge_expired_reports\[\S+\] succeeded")


@dataclass
class Stopped:
    code: int
    output: str
    slow_reply: HttpReply | None
    row: dict[str, object]  # the long report's row once procrun has exited


@pytest.fixture(scope="module")
def stopped(site: Site) -> Stopped:
    """One SIGTERM while a long report is being built and a slow request is in flight."""
    old = site.procrun
    old.submit("django-long-1", seconds=LONG_REPORT_SECONDS)
    old.wait_until_building("django-long-1")
    replies: list[HttpReply] = []
    request = threading.Thread(
        target=lambda: replies.append(
            http("GET", f"{old.base_url}/slow?seconds={SLOW_REQUEST_SECONDS}")
        ),
        daemon=True,
    )
    request.start()
    old.wait_for_line(r"web\.1 .*slow request started")
    code = old.stop()
    request.join(STARTUP_DEADLINE_SECONDS)
    output = old.output()
    row = report_row(site.data_dir / "db.sqlite3", "django-long-1")
    return Stopped(code, output, replies[0] if replies else None, row)


def test_a_slow_request_in_flight_at_sigterm_gets_its_200(stopped: Stopped) -> None:
    assert stopped.slow_reply is not None, stopped.output
    assert stopped.slow_reply.status == 200, stopped.slow_reply.body
    assert stopped.slow_reply.body == {"slept": SLOW_REQUEST_SECONDS}
    assert re.search(r"web\.1 .*Handling signal: term", stopped.output), stopped.output
    assert re.search(r"process\.stopped .*process=web\.1 returncode=0", stopped.output)
    assert stopped.code == 0, stopped.output  # nothing needed a SIGKILL
    no_traceback(stopped.output)


def test_the_interrupted_report_is_requeued_and_built_once_by_the_next_start(
    site: Site, stopped: Stopped, tmp_path: Path
) -> None:
    output = stopped.output
    assert re.search(r"signal\.sent .*process=worker\.1 signal=SIGTERM", output), output
    assert re.search(r"worker\.1 .*Warm shutdown", output), output
    assert re.search(r"signal\.sent .*process=worker\.1 signal=SIGQUIT", output), output
    assert re.search(r"worker\.1 .*Restoring 1 unacknowledged message\(s\)", output), output
    row = stopped.row  # the stopped run did not get to the end of the report
    assert (row["state"], row["attempts"], row["completions"]) == ("running", 1, 0), row
    with site.redis.client() as client:
        assert client.hlen(UNACKED_KEY) == 0, "nothing left for the visibility timeout"
        assert len(pending_messages(client, "django-long-1")) == 1, "back on the queue"
    env = django_environment(site.redis.url, site.data_dir)
    with DjangoSite(tmp_path, env, "web", "worker") as new:
        new.wait_until_up()
        row = new.wait_until_built("django-long-1")
        assert new.stop() == 0, new.transcript()
        new_output = new.output()
    # Started twice (the stopped run, then this one), built once.
    assert (row["state"], row["attempts"], row["completions"]) == ("done", 2, 1), row
    with site.redis.client() as client:
        assert pending_messages(client, "django-long-1") == [], "no copy left to run again"
    no_traceback(new_output)


# --- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Path]]:
    directory = tmp_path_factory.mktemp("tls")
    files = server_certificate(directory, make_ca(directory, "issuer"))
    server = RedisServer(directory, tls=files, password=TLS_PASSWORD)
    yield server, files.ca
    server.stop()


def test_the_round_trip_over_verified_tls(
    tls_redis: tuple[RedisServer, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    server, ca = tls_redis
    data_dir = tmp_path_factory.mktemp("tls-data")
    env = django_environment(server.url, data_dir, REDIS_CA_CERTS=str(ca))
    with DjangoSite(tmp_path_factory.mktemp("tls-procrun"), env) as procrun:
        procrun.wait_until_up()
        procrun.submit("django-tls-1", seconds=0)
        row = procrun.wait_until_built("django-tls-1")
        procrun.wait_for_line(r"beat\.1 .*beat: Acquired lock")  # RedBeat over TLS too
        assert procrun.stop() == 0, procrun.transcript()
        output = procrun.output()
    assert (row["attempts"], row["completions"]) == (1, 1), row
    assert re.search(r"worker\.1 .*transport: +rediss://", output), output
    assert TLS_PASSWORD not in output
    # kombu's warning for rediss:// without explicit TLS options, which it then does not check
    assert "Secure redis scheme specified (rediss) with no ssl options" not in output
    no_traceback(output)


# --- the image (built from the repository root) --------------------------------------------------


@pytest.fixture(scope="module")
def image() -> Image:
    return load_image()


@pytest.fixture(scope="module")
def ignore() -> list[IgnoreRule]:
    return parse_dockerignore((REPO / ".dockerignore").read_text())


def test_the_image_runs_procrun_as_pid_1_as_a_fixed_non_root_user(image: Image) -> None:
    check_procrun_is_pid_1_as_a_fixed_non_root_user(image)


def test_the_image_installs_procrun_from_the_repository_and_the_project_s_requirements(
    image: Image, ignore: list[IgnoreRule], tmp_path: Path
) -> None:
    check_procrun_and_the_requirements_installed(image, ignore, tmp_path)


def test_the_image_keeps_secrets_out_and_its_data_writable(image: Image) -> None:
    check_no_secret_and_a_writable_data_dir(image)


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="a PID namespace and a chroot need root; CI runs as root"
)


@needs_root
def test_the_image_s_cmd_runs_the_stack_as_the_image_s_user(
    image: Image, ignore: list[IgnoreRule], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    redis_server = RedisServer(tmp_path)  # its own: no other Beat may hold RedBeat's lock in it
    request.addfinalizer(redis_server.stop)
    port = free_port()
    platform = {  # what a platform sets at run time
        "PORT": str(port),
        "REDIS_URL": redis_server.url,
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "WEB_CONCURRENCY": "1",
        "CELERY_CONCURRENCY": "1",
        "PROCRUN_SHUTDOWN_TIMEOUT": "10s",
    }
    root = build_root(image, REPO, ignore, platform)
    code = sorted(root.workdir_path.iterdir())
    container = Container(root, image.one("CMD").exec_form() or [])
    try:
        pid1 = container.pid1()
        container.wait_for_line(r"procrun .*release\.succeeded")
        container.wait_for_line(rf"web\.1 .*Listening at: http://0\.0\.0\.0:{port}\b")
        container.wait_for_line(r"worker\.1 .*celery@\S+ ready")
        container.wait_for_line(r"beat\.1 .*beat: Acquired lock")
        uids = owners([pid1, *descendants(pid1)])
        assert uids == {root.uid}, container.transcript()
        base_url = f"http://127.0.0.1:{port}"
        reply = http("POST", f"{base_url}/reports?seconds=0&job_id=django-image-1", b"")
        assert reply.status == 202, reply.body
        container.wait_for_line(
            r"worker\.1 .*Task reports\.build_report\[django-image-1\] succeeded"
        )
        assert http("GET", f"{base_url}/reports/django-image-1").body["state"] == "done"
        os.kill(pid1, signal.SIGTERM)
        assert container.proc.wait(STARTUP_DEADLINE_SECONDS) == 0, container.rest()
        output = container.rest()
        # The release wrote into DATA_DIR, in the user's home; nothing into the root-owned code.
        assert (root.path / image.env["DATA_DIR"][1:] / "db.sqlite3").is_file()
        assert sorted(root.workdir_path.iterdir()) == code, "written into the code directory"
    finally:
        container.close()
        shutil.rmtree(root.path, ignore_errors=True)
    assert "Permission denied" not in output
    assert "superuser privileges" not in output  # Celery's warning when run as root
    no_traceback(output)


# --- settings from the environment ----------------------------------------------------------------


def test_every_redis_client_verifies_tls_and_jobs_survive_a_stop(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA bundle\n")
    url = "rediss://:pw@redis.example:6380/0"
    seen = celery_configuration(django_environment(url, tmp_path, REDIS_CA_CERTS=str(ca)))
    verified = {"ssl_cert_reqs": 2, "ssl_check_hostname": True, "ssl_ca_certs": str(ca)}
    assert [seen["broker"], seen["backend"], seen["redbeat"]] == [verified] * 3
    assert (seen["redbeat_url"], seen["redbeat_lock_timeout"]) == (url, 30)
    assert (seen["acks_late"], seen["reject_on_worker_lost"], seen["prefetch"]) == (True, True, 1)
    assert seen["visibility_timeout"] > seen["time_limit"]
    plain = celery_configuration(django_environment("redis://127.0.0.1:1/0", tmp_path))
    assert (plain["broker"], plain["backend"], plain["redbeat"]) == (False, False, None)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REDIS_URL", "http://:pa55word-x@h/0", "REDIS_URL: expected a redis:// or rediss:// URL"),
        ("DJANGO_SECRET_KEY", "", "DJANGO_SECRET_KEY: not set; set it to a long random string"),
        ("CELERY_CONCURRENCY", "two", "CELERY_CONCURRENCY: expected a positive whole number"),
        ("DATABASE_URL", "mysql://u:pa55word-x@h/db", "DATABASE_URL: expected postgres://"),
    ],
)
def test_a_bad_variable_stops_the_release_with_one_line(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    env = django_environment("redis://127.0.0.1:1/0", tmp_path, **{variable: value})
    result = manage(env, "migrate", "--noinput")
    assert result.returncode != 0
    assert result.stderr.startswith(f"mysite: {message}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "pa55word" not in result.stderr

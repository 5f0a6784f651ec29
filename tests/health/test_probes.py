"""Polled probes against real peers: listening and refusing sockets, a tiny HTTP server (plain and
TLS), and /bin/sh commands reaped by procrun's own Reaper on real SIGCHLDs. Deadlines are hang
guards; the waits are on events."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import trustme

from procrun.health.polling import next_interval, poll_until_ok
from procrun.health.probes import ProbeResult, check_once
from procrun.reaper import Reaper
from procrun.settings import Probe, ProbeKind, expand_variables

DEADLINE_SECONDS = 10.0
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


class NoChildren:
    """The children of a tcp or http probe: it has none."""

    def register(self, pid: int, on_exit: Callable[[int], None]) -> None:
        raise AssertionError(f"a probe that spawns nothing spawned pid {pid}")


NO_CHILDREN = NoChildren()


@contextlib.contextmanager
def reaping_on_sigchld(reaper: Reaper) -> Iterator[Reaper]:
    """`reaper` runs on every real SIGCHLD, as in a run (which routes them through the loop too)."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGCHLD, reaper.reap)
    try:
        yield reaper
    finally:
        loop.remove_signal_handler(signal.SIGCHLD)


@pytest.fixture
async def reaper() -> AsyncIterator[Reaper]:
    """procrun's own reaper; it adopts no orphans, as the test runner's other children (if any)
    are not ours to reap."""
    with reaping_on_sigchld(Reaper(adopt_orphans=False)) as reaper:
        yield reaper


# --- expand_variables and next_interval: pure ---------------------------------------------------


def test_expand_variables_takes_both_forms_from_the_env() -> None:
    env = {"PORT": "5000", "HOST": "127.0.0.1"}
    assert expand_variables("$HOST:$PORT", env) == "127.0.0.1:5000"
    assert expand_variables("http://${HOST}:${PORT}/health", env) == "http://127.0.0.1:5000/health"


def test_expand_variables_leaves_unknown_names_and_lone_dollars_as_written() -> None:
    assert expand_variables("127.0.0.1:$PORT", {}) == "127.0.0.1:$PORT"
    assert expand_variables("${MISSING}/x $ y", {"OTHER": "1"}) == "${MISSING}/x $ y"
    assert expand_variables("$$PORT", {"PORT": "1"}) == "$PORT", "string.Template: $$ is a dollar"


def test_next_interval_starts_at_10_ms_and_doubles_up_to_the_cap() -> None:
    intervals: list[float] = []
    previous: float | None = None
    for _ in range(10):
        previous = next_interval(previous, 1.0)
        intervals.append(previous)
    assert intervals[:4] == pytest.approx([0.01, 0.02, 0.04, 0.08])
    assert intervals[-3:] == [1.0, 1.0, 1.0]
    assert all(a <= b for a, b in itertools.pairwise(intervals))


def test_next_interval_never_exceeds_a_cap_below_the_first_step() -> None:
    assert next_interval(None, 0.005) == 0.005
    assert next_interval(0.005, 0.005) == 0.005


@pytest.mark.parametrize("kind", [ProbeKind.LOG, ProbeKind.NOTIFY, ProbeKind.WATCHDOG])
async def test_kinds_that_are_not_polled_are_a_caller_bug(kind: ProbeKind, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not polled"):
        await check_once(Probe(kind, "x"), ENV, tmp_path, children=NO_CHILDREN)


# --- tcp ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def refusing_port() -> Iterator[socket.socket]:
    """A bound port with nobody listening: a connect to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


async def test_tcp_connects_to_a_listening_port(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda _, writer: writer.close(), "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        probe = Probe(ProbeKind.TCP, "127.0.0.1:$PORT")
        result = await check_once(probe, {"PORT": str(port)}, tmp_path, children=NO_CHILDREN)
    assert result == ProbeResult(True, "connected")


async def test_tcp_takes_a_bracketed_ipv6_address(tmp_path: Path) -> None:
    try:
        server = await asyncio.start_server(lambda _, writer: writer.close(), "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    async with server:
        port = server.sockets[0].getsockname()[1]
        result = await check_once(
            Probe(ProbeKind.TCP, f"[::1]:{port}"), ENV, tmp_path, children=NO_CHILDREN
        )
    assert result == ProbeResult(True, "connected")


async def test_tcp_refused(tmp_path: Path) -> None:
    with refusing_port() as sock:
        port = sock.getsockname()[1]
        result = await check_once(
            Probe(ProbeKind.TCP, f"127.0.0.1:{port}"), ENV, tmp_path, children=NO_CHILDREN
        )
    assert result == ProbeResult(False, "connection refused")


@pytest.mark.parametrize("target", ["127.0.0.1", "127.0.0.1:http", ":80", "host:70000"])
async def test_tcp_target_that_is_no_address_fails_quoting_it(target: str, tmp_path: Path) -> None:
    result = await check_once(Probe(ProbeKind.TCP, target), ENV, tmp_path, children=NO_CHILDREN)
    assert result == ProbeResult(False, f'expected "host:port", got "{target}"')


async def test_tcp_unresolvable_host(tmp_path: Path) -> None:
    result = await check_once(
        Probe(ProbeKind.TCP, "no-such-host.invalid:80"), ENV, tmp_path, children=NO_CHILDREN
    )
    assert not result.ok
    assert result.detail.startswith("cannot resolve: ")


# --- http --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def http_server(
    status_line: bytes, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[int, list[bytes]]]:
    """Answers every request with `status_line`; yields its port and the requests it read."""
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(status_line + b"\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=tls)
    async with server:
        yield server.sockets[0].getsockname()[1], requests


async def test_http_2xx_passes_and_the_request_is_minimal(tmp_path: Path) -> None:
    async with http_server(b"HTTP/1.1 204 No Content") as (port, requests):
        probe = Probe(ProbeKind.HTTP, "http://127.0.0.1:$PORT/health?full=1")
        result = await check_once(probe, {"PORT": str(port)}, tmp_path, children=NO_CHILDREN)
    assert result == ProbeResult(True, "HTTP 204")
    head, *headers = requests[0].decode().split("\r\n")
    assert head == "GET /health?full=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}" in headers
    assert "Connection: close" in headers
    assert "User-Agent: procrun-probe" in headers


async def test_http_503_fails(tmp_path: Path) -> None:
    async with http_server(b"HTTP/1.1 503 Service Unavailable") as (port, _):
        result = await check_once(
            Probe(ProbeKind.HTTP, f"http://127.0.0.1:{port}"), ENV, tmp_path, children=NO_CHILDREN
        )
    assert result == ProbeResult(False, "HTTP 503")


async def test_http_expected_status_is_the_only_one_that_passes(tmp_path: Path) -> None:
    url = "http://127.0.0.1:{}/"
    async with http_server(b"HTTP/1.0 401 Unauthorized") as (port, _):
        wanted = await check_once(
            Probe(ProbeKind.HTTP, url.format(port), 401), ENV, tmp_path, children=NO_CHILDREN
        )
    async with http_server(b"HTTP/1.1 200 OK") as (port, _):
        other = await check_once(
            Probe(ProbeKind.HTTP, url.format(port), 401), ENV, tmp_path, children=NO_CHILDREN
        )
    assert wanted == ProbeResult(True, "HTTP 401")
    assert other == ProbeResult(False, "HTTP 200")


async def test_http_answer_that_is_not_http_fails_quoting_it(tmp_path: Path) -> None:
    async with http_server(b"SSH-2.0-OpenSSH_9.6") as (port, _):
        result = await check_once(
            Probe(ProbeKind.HTTP, f"http://127.0.0.1:{port}"), ENV, tmp_path, children=NO_CHILDREN
        )
    assert result == ProbeResult(False, 'bad status line: "SSH-2.0-OpenSSH_9.6"')


async def test_http_refused(tmp_path: Path) -> None:
    with refusing_port() as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        result = await check_once(Probe(ProbeKind.HTTP, url), ENV, tmp_path, children=NO_CHILDREN)
    assert result == ProbeResult(False, "connection refused")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "127.0.0.1:80", "http://:80/", "http://h:x/"])
async def test_http_target_that_is_no_url_fails_quoting_it(url: str, tmp_path: Path) -> None:
    result = await check_once(Probe(ProbeKind.HTTP, url), ENV, tmp_path, children=NO_CHILDREN)
    assert result == ProbeResult(False, f'expected an http:// or https:// URL, got "{url}"')


async def test_http_silent_server_times_out_and_the_connection_is_closed(tmp_path: Path) -> None:
    hung_up = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the probe hangs up
        hung_up.set()
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    async with server:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        result = await check_once(
            Probe(ProbeKind.HTTP, url, timeout_seconds=0.2), ENV, tmp_path, children=NO_CHILDREN
        )
        await asyncio.wait_for(hung_up.wait(), DEADLINE_SECONDS)
    assert result == ProbeResult(False, "timed out after 0.2 s")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def test_https_verifies_the_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    async with http_server(b"HTTP/1.1 200 OK", tls_server_context(ca)) as (port, requests):
        result = await check_once(
            Probe(ProbeKind.HTTP, f"https://127.0.0.1:{port}/"), ENV, tmp_path, children=NO_CHILDREN
        )
    assert not result.ok
    assert result.detail.startswith("certificate not trusted: "), result.detail
    assert requests == []


async def test_https_passes_with_a_trusted_certificate(
    ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # what create_default_context trusts
    async with http_server(b"HTTP/1.1 200 OK", tls_server_context(ca)) as (port, requests):
        result = await check_once(
            Probe(ProbeKind.HTTP, f"https://127.0.0.1:{port}/"), ENV, tmp_path, children=NO_CHILDREN
        )
    assert result == ProbeResult(True, "HTTP 200")
    assert len(requests) == 1


# --- exec --------------------------------------------------------------------------------------


def assert_group_gone(pgid: int) -> None:
    """No member left, not even a zombie leader (kill(2) reaches zombies too)."""
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


async def wait_exited(pid: int) -> None:
    """Until `pid`, not our child, has exited: its pidfd turns readable. Once its parent is
    killed it is init's to reap, so the group can hold its zombie a moment longer."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # exited and reaped already
    loop = asyncio.get_running_loop()
    exited = asyncio.Event()
    loop.add_reader(fd, exited.set)
    try:
        await asyncio.wait_for(exited.wait(), DEADLINE_SECONDS)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def test_exec_exit_0_passes(tmp_path: Path, reaper: Reaper) -> None:
    result = await check_once(Probe(ProbeKind.EXEC, "true"), ENV, tmp_path, children=reaper)
    assert result == ProbeResult(True, "exit 0")


async def test_exec_failure_says_the_code_and_the_last_line(tmp_path: Path, reaper: Reaper) -> None:
    lines: list[bytes] = []
    command = "echo checking; echo 'database is down' >&2; printf '\\n'; exit 3"
    result = await check_once(
        Probe(ProbeKind.EXEC, command), ENV, tmp_path, children=reaper, on_output=lines.append
    )
    assert result == ProbeResult(False, "exit 3: database is down")
    assert lines == [b"checking", b"database is down", b""]


async def test_exec_runs_with_exactly_the_env_and_cwd_given(tmp_path: Path, reaper: Reaper) -> None:
    lines: list[bytes] = []
    env = {**ENV, "ONLY": "this one"}
    command = 'printf "%s|%s|%s" "$ONLY" "${HOME-unset}" "$(pwd)"'  # no newline at the end
    result = await check_once(
        Probe(ProbeKind.EXEC, command), env, tmp_path, children=reaper, on_output=lines.append
    )
    assert result.ok
    assert lines == [f"this one|unset|{tmp_path}".encode()]


async def test_exec_killed_by_a_signal_says_which(tmp_path: Path, reaper: Reaper) -> None:
    result = await check_once(
        Probe(ProbeKind.EXEC, "echo bye; kill -TERM $$"), ENV, tmp_path, children=reaper
    )
    assert result == ProbeResult(False, "killed by SIGTERM: bye")


async def test_exec_in_a_missing_directory_fails(tmp_path: Path, reaper: Reaper) -> None:
    result = await check_once(
        Probe(ProbeKind.EXEC, "true"), ENV, tmp_path / "gone", children=reaper
    )
    assert result == ProbeResult(
        False, f"cannot start /bin/sh: no such file or directory: {tmp_path / 'gone'}"
    )


async def test_exec_timeout_kills_and_reaps_it(tmp_path: Path, reaper: Reaper) -> None:
    lines: list[bytes] = []
    probe = Probe(ProbeKind.EXEC, "echo $$; exec sleep 30", timeout_seconds=0.3)
    result = await check_once(probe, ENV, tmp_path, children=reaper, on_output=lines.append)
    assert result == ProbeResult(False, "timed out after 0.3 s")
    assert lines, "the shell said its pid (its group's id) before the timeout"
    assert_group_gone(int(lines[0]))


async def test_exec_timeout_kills_the_whole_group(tmp_path: Path, reaper: Reaper) -> None:
    lines: list[bytes] = []
    probe = Probe(ProbeKind.EXEC, "sleep 30 & echo $$ $!; wait", timeout_seconds=0.3)
    result = await check_once(probe, ENV, tmp_path, children=reaper, on_output=lines.append)
    assert result == ProbeResult(False, "timed out after 0.3 s")
    leader, sleeper = map(int, lines[0].split())
    with pytest.raises(ProcessLookupError):
        os.kill(leader, 0)  # reaped: no zombie of ours
    await wait_exited(sleeper)  # well before its 30 s: killed with the group


async def test_exec_what_the_command_left_running_ends_with_it(
    tmp_path: Path, reaper: Reaper
) -> None:
    lines: list[bytes] = []
    probe = Probe(ProbeKind.EXEC, "sleep 30 & echo $!", timeout_seconds=DEADLINE_SECONDS)
    result = await check_once(probe, ENV, tmp_path, children=reaper, on_output=lines.append)
    assert result == ProbeResult(True, "exit 0")  # at once: the sleep held the pipe, not the probe
    await wait_exited(int(lines[0]))


async def test_exec_error_of_on_output_is_raised_after_the_process_is_gone(
    tmp_path: Path, reaper: Reaper
) -> None:
    pids: list[int] = []

    def on_output(line: bytes) -> None:
        pids.append(int(line))
        raise RuntimeError("the relay broke")

    probe = Probe(ProbeKind.EXEC, "echo $$; echo more; exit 0")
    with pytest.raises(RuntimeError, match="the relay broke"):
        await check_once(probe, ENV, tmp_path, children=reaper, on_output=on_output)
    assert len(pids) == 1, "not called again once it raised"
    assert_group_gone(pids[0])


def spawn_zombie() -> int:
    """A child nobody registered, exited and not reaped yet: an orphan, to the reaper."""
    pid = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "exit 7"], ENV)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # until it has exited; still unreaped
    return pid


def is_reaped(pid: int) -> bool:
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return False


async def test_exec_status_is_never_lost_to_a_reaper_that_adopts_orphans(tmp_path: Path) -> None:
    """As PID 1 or a subreaper, procrun reaps every child it did not register: a probe's shell is
    registered, so each exit status is its own (asyncio's watcher, robbed, would say 255)."""
    stray = spawn_zombie()
    probe = Probe(ProbeKind.EXEC, "exit 3")
    with reaping_on_sigchld(Reaper(adopt_orphans=True)) as reaper:
        results = [await check_once(probe, ENV, tmp_path, children=reaper) for _ in range(20)]
    assert results == [ProbeResult(False, "exit 3")] * 20
    assert is_reaped(stray), "the reaper did adopt orphans meanwhile"


async def test_exec_cancelled_again_while_it_is_reaped_still_leaves_nothing(
    tmp_path: Path, reaper: Reaper
) -> None:
    started: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    probe = Probe(ProbeKind.EXEC, "echo $$; exec sleep 30", timeout_seconds=DEADLINE_SECONDS)
    checking = asyncio.create_task(
        check_once(probe, ENV, tmp_path, children=reaper, on_output=started.set_result)
    )
    pgid = int(await asyncio.wait_for(started, DEADLINE_SECONDS))
    checking.cancel()
    await asyncio.sleep(0)  # it has killed the group and waits for the reaper: cancel that too
    assert checking.cancel(), "still waiting for the reaper"
    with pytest.raises(asyncio.CancelledError):
        await checking
    assert_group_gone(pgid)


# --- polling -----------------------------------------------------------------------------------


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_poll_until_ok_waits_for_the_port_to_listen(tmp_path: Path) -> None:
    failures: list[ProbeResult] = []
    failed_twice = asyncio.Event()

    def on_failure(result: ProbeResult) -> None:
        failures.append(result)
        if len(failures) == 2:
            failed_twice.set()

    with refusing_port() as sock:
        probe = Probe(ProbeKind.TCP, "127.0.0.1:$PORT")
        env = {"PORT": str(sock.getsockname()[1])}
        polling = asyncio.create_task(
            poll_until_ok(
                probe,
                env,
                tmp_path,
                max_interval=0.05,
                children=NO_CHILDREN,
                on_failure=on_failure,
            )
        )
        await asyncio.wait_for(failed_twice.wait(), DEADLINE_SECONDS)
        # The same bound socket starts listening: no other process can take the port meanwhile.
        server = await asyncio.start_server(lambda _, writer: writer.close(), sock=sock)
        async with server:
            result = await asyncio.wait_for(polling, DEADLINE_SECONDS)
    assert result == ProbeResult(True, "connected")
    assert len(failures) >= 2
    assert set(failures) == {ProbeResult(False, "connection refused")}


async def test_cancelling_poll_until_ok_leaves_no_process_or_fd(
    tmp_path: Path, reaper: Reaper
) -> None:
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_output(line: bytes) -> None:
        if not started.done():
            started.set_result(int(line))

    before = open_fds()
    probe = Probe(ProbeKind.EXEC, "echo $$; exec sleep 30", timeout_seconds=DEADLINE_SECONDS)
    polling = asyncio.create_task(
        poll_until_ok(probe, ENV, tmp_path, max_interval=1.0, children=reaper, on_output=on_output)
    )
    pgid = await asyncio.wait_for(started, DEADLINE_SECONDS)
    polling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await polling
    assert_group_gone(pgid)
    assert open_fds() == before


async def test_cancelling_poll_until_ok_closes_its_connection(tmp_path: Path) -> None:
    connected = asyncio.Event()
    hung_up = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()
        hung_up.set()
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    async with server:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        probe = Probe(ProbeKind.HTTP, url, timeout_seconds=DEADLINE_SECONDS)
        polling = asyncio.create_task(
            poll_until_ok(probe, ENV, tmp_path, max_interval=1.0, children=NO_CHILDREN)
        )
        await asyncio.wait_for(connected.wait(), DEADLINE_SECONDS)
        polling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await polling
        await asyncio.wait_for(hung_up.wait(), DEADLINE_SECONDS)


async def test_a_nudge_cuts_the_back_off_short(tmp_path: Path) -> None:
    """With a back-off of a minute, the attempt after the port listens comes only because the
    caller nudges (as procrun does when the process writes output)."""
    nudge = asyncio.Event()
    failed = asyncio.Event()
    with refusing_port() as sock:
        probe = Probe(ProbeKind.TCP, f"127.0.0.1:{sock.getsockname()[1]}")
        polling = asyncio.create_task(
            poll_until_ok(
                probe,
                ENV,
                tmp_path,
                max_interval=60.0,
                children=NO_CHILDREN,
                on_failure=lambda result: failed.set(),
                nudge=nudge,
            )
        )
        for _ in range(12):  # past the short waits: the next one (41 s) outlasts the deadline
            failed.clear()
            nudge.set()
            await asyncio.wait_for(failed.wait(), DEADLINE_SECONDS)
        server = await asyncio.start_server(lambda _, writer: writer.close(), sock=sock)
        async with server:
            assert not polling.done()
            nudge.set()
            result = await asyncio.wait_for(polling, DEADLINE_SECONDS)
    assert result.ok

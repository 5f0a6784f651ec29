"""The tools under test, each configured for a formation the way a careful user would.

A formation is a list of Programs (a process type: a name, a command, how many, its grace and
restart policy). Each tool turns it into its own files and command line:

* procrun: a Procfile, a procrun.toml for graces and restart settings, `-c name=N`.
* honcho: the same Procfile and `-c name=N`; it has no grace setting (5 s, fixed), no restarts.
* supervisord: one [program:x] per type, stdout_logfile=/dev/stdout with maxbytes=0 (it logs
  "Illegal seek" otherwise), redirect_stderr, stopwaitsecs for the grace, killasgroup so the
  SIGKILL at the deadline reaches the whole group (the stop signal goes to the main pid, as
  procrun's does), numprocs for instances; its own log goes to stdout in nodaemon mode.
* tini: one child only, so a shell starts the formation in the background and waits; `-g`
  forwards signals to the whole group and `-s` registers tini as a subreaper.
* direct: the same shell with no supervisor at all, for the machine's ceiling.
* asyncio floor: bench/programs/floor.py, the least an asyncio relay does (scenario 6 only).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
PROGRAMS = Path(__file__).resolve().parent / "programs"
HONCHO_KILL_WAIT_SECONDS = 5.0  # honcho/manager.py KILL_WAIT: not configurable


@dataclass(frozen=True)
class Program:
    name: str
    argv: tuple[str, ...]
    count: int = 1
    grace_seconds: float | None = None
    restart: bool = True
    backoff_seconds: float | None = None  # procrun's first restart delay; None: its default


@dataclass(frozen=True)
class Setup:
    argv: list[str]
    status_argv: list[str] | None
    settled: bytes  # a pattern matched once per process when it has reached its running state


def sh(script: str, *args: str) -> tuple[str, ...]:
    return ("/bin/sh", str(PROGRAMS / script), *args)


def writer(mode: str, child: str, count: int) -> tuple[str, ...]:
    return (sys.executable, "-I", "-S", str(PROGRAMS / "writer.py"), mode, child, str(count))


READY = rb"READY (\S+) \d+"  # one per process type: its name


def _duration(seconds: float) -> str:
    return f'"{round(seconds * 1000)}ms"'


def _concurrency(programs: list[Program]) -> list[str]:
    counts = [f"{p.name}={p.count}" for p in programs if p.count != 1]
    return ["-c", ",".join(counts)] if counts else []


def _procfile(workdir: Path, programs: list[Program]) -> Path:
    path = workdir / "Procfile"
    path.write_text("".join(f"{p.name}: {shlex.join(p.argv)}\n" for p in programs))
    return path


class Tool:
    name = ""
    python = True  # a Python supervisor (for "the lightest Python peer")
    helpers: tuple[str, ...] = ()  # programs it runs for itself (a word of their command line)

    def available(self) -> bool:
        return True

    def setup(self, workdir: Path, programs: list[Program]) -> Setup:
        raise NotImplementedError


class Procrun(Tool):
    name = "procrun"
    helpers = ("procrun-undertaker",)  # procrun/undertaker.py

    def setup(self, workdir: Path, programs: list[Program]) -> Setup:
        procfile = _procfile(workdir, programs)
        toml = []
        for p in programs:
            settings = []
            if p.grace_seconds is not None:
                settings.append(f"grace = {_duration(p.grace_seconds)}")
            if not p.restart:
                settings.append('restart = "never"')
            if p.backoff_seconds is not None:
                settings.append(f"backoff = {_duration(p.backoff_seconds)}")
            if settings:
                toml.append(f"[processes.{p.name}]\n" + "\n".join(settings) + "\n")
        if toml:
            (workdir / "procrun.toml").write_text("\n".join(toml))
        return Setup(
            argv=[str(BIN / "procrun"), "start", "-f", str(procfile), *_concurrency(programs)],
            status_argv=[str(BIN / "procrun"), "status"],
            settled=rb"process\.running .*process=(\S+)",
        )


class Honcho(Tool):
    name = "honcho"

    def setup(self, workdir: Path, programs: list[Program]) -> Setup:
        procfile = _procfile(workdir, programs)
        argv = [str(BIN / "honcho"), "start", "-f", str(procfile), "-d", str(workdir)]
        return Setup(argv=[*argv, *_concurrency(programs)], status_argv=None, settled=READY)


class Supervisord(Tool):
    name = "supervisord"

    def setup(self, workdir: Path, programs: list[Program]) -> Setup:
        conf = workdir / "supervisord.conf"
        socket = workdir / "supervisor.sock"
        lines = [
            "[supervisord]",
            "nodaemon=true",
            "logfile=/dev/null",  # nodaemon mode logs to stdout as well
            "logfile_maxbytes=0",
            f"pidfile={workdir / 'supervisord.pid'}",
            *([f"user={_user()}"] if os.geteuid() == 0 else []),
            "[unix_http_server]",
            f"file={socket}",
            "[supervisorctl]",
            f"serverurl=unix://{socket}",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        ]
        for p in programs:
            lines += [
                f"[program:{p.name}]",
                f"command={shlex.join(p.argv)}",
                "stdout_logfile=/dev/stdout",
                "stdout_logfile_maxbytes=0",
                "redirect_stderr=true",
                f"autorestart={'true' if p.restart else 'false'}",
                "killasgroup=true",
            ]
            if p.grace_seconds is not None:
                lines.append(f"stopwaitsecs={max(1, round(p.grace_seconds))}")
            if p.count != 1:
                lines += [f"numprocs={p.count}", "process_name=%(program_name)s_%(process_num)d"]
        conf.write_text("\n".join(lines) + "\n")
        return Setup(
            argv=[str(BIN / "supervisord"), "-n", "-c", str(conf)],
            status_argv=[str(BIN / "supervisorctl"), "-c", str(conf), "status"],
            settled=rb"success: (\S+) entered RUNNING state",
        )


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _background_all(programs: list[Program]) -> str:
    commands = [shlex.join(p.argv) for p in programs for _ in range(p.count)]
    return "".join(f"{command} & " for command in commands) + "wait"


class Tini(Tool):
    name = "tini"
    python = False

    def available(self) -> bool:
        return shutil.which("tini") is not None

    def setup(self, workdir: Path, programs: list[Program]) -> Setup:
        tini = shutil.which("tini") or "tini"
        shell = ["/bin/sh", "-c", _background_all(programs)]
        return Setup(argv=[tini, "-s", "-g", "--", *shell], status_argv=None, settled=READY)


class Direct(Tool):
    name = "direct pipe"
    python = False

    def setup(self, workdir: Path, programs: list[Program]) -> Setup:
        return Setup(
            argv=["/bin/sh", "-c", _background_all(programs)], status_argv=None, settled=READY
        )


class AsyncioFloor(Tool):
    name = "asyncio floor"

    def setup(self, workdir: Path, programs: list[Program]) -> Setup:
        procfile = _procfile(workdir, programs)
        argv = [sys.executable, str(PROGRAMS / "floor.py"), str(procfile)]
        return Setup(argv=argv, status_argv=None, settled=READY)


PROCRUN, HONCHO, SUPERVISORD, TINI, DIRECT = Procrun(), Honcho(), Supervisord(), Tini(), Direct()
ASYNCIO_FLOOR = AsyncioFloor()
PEERS: list[Tool] = [PROCRUN, HONCHO, SUPERVISORD]

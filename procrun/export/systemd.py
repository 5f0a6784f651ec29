"""`procrun export systemd`: a target, `<app>.target`, and one template unit per process type,
`<app>-<type>@.service`, whose instances the target wants (foreman's layout).

Each instance runs `<procrun> start TYPE` as its main process, Type=notify: procrun sends
READY=1 once its processes are ready, STATUS= lines, STOPPING=1 and, when asked, WATCHDOG=1
(procrun/health/sdnotify.py). KillMode=mixed: `systemctl stop` sends SIGTERM to procrun alone,
which runs the type's stop sequence, and SIGKILLs the whole cgroup at TimeoutStopSec, the type's
deadline plus EXPORT_MARGIN_SECONDS. Instances of a type with a PORT are named by it
(`web@5000`, PORT=%i, the ports `start -c web=N` would give); the others by number. Every
instance has its own control socket (PROCRUN_SOCKET in its RuntimeDirectory), since they share
the project directory that would otherwise name one socket for all.
"""

from __future__ import annotations

import pwd
import shutil
import sys
from pathlib import Path

from procrun.errors import UsageError
from procrun.export.units import EXPORT_MARGIN_SECONDS, Export, Unit, dns_label, duration
from procrun.export.yamltext import Generated, GeneratedFile, comment, header
from procrun.project.celery_worker import runs_celery_worker
from procrun.quoting import excerpt

_NEEDS_QUOTES = frozenset(' \t"\\')


def generate(export: Export) -> Generated:
    procrun = _procrun(export.options.procrun)
    user = export.options.user or _owner(export.root)
    notes = [note for note in (export.ignored_deadline_note(),) if note]
    if user == "root":
        notes.append(
            "User=root (the project directory's owner): give --user NAME to run as another"
        )
    files = [GeneratedFile(f"{export.app}.target", _target(export))]
    for unit in export.units:
        if unit.env:
            notes.append(
                f"{unit.kind}: EnvironmentFile= puts .env in the real environment, so where .env "
                "and procrun.toml's env set the same variable, .env wins (under procrun alone, "
                "procrun.toml does)"
            )
        if unit.count > 1 and runs_celery_worker(unit.command):
            notes.append(
                f"{unit.kind}: {unit.count} Celery workers on one host share the node name "
                "celery@<host>: give the command a -n that differs per instance"
            )
        text = _template(export, unit, procrun, user)
        files.append(GeneratedFile(f"{_prefix(export, unit)}@.service", text))
    return Generated(tuple(files), tuple(notes))


def instances(export: Export, unit: Unit) -> list[str]:
    """`procrun-web@5000.service`, `procrun-worker@1.service`...: the units the target wants."""
    first = unit.port if unit.port is not None else 1
    return [f"{_prefix(export, unit)}@{first + i}.service" for i in range(unit.count)]


def _prefix(export: Export, unit: Unit) -> str:
    return f"{export.app}-{dns_label(unit.kind)}"


def _target(export: Export) -> str:
    wanted = [name for unit in export.units for name in instances(export, unit)]
    kinds = ", ".join(unit.kind for unit in export.units)
    about = header(
        "systemd",
        export.sources,
        f"Every process type of {export.app} as a template unit, one instance per process "
        "(`systemctl start` or `enable` this target). Copy the files to /etc/systemd/system, "
        f"then: systemctl daemon-reload && systemctl enable --now {export.app}.target",
    )
    return (
        comment(about)
        + "[Unit]\n"
        + f"Description={_escape(export.app)}: {_escape(kinds)}\n"
        + f"Wants={' '.join(wanted)}\n"
        + "\n[Install]\nWantedBy=multi-user.target\n"
    )


def _template(export: Export, unit: Unit, procrun: str, user: str) -> str:
    about = [
        *header("systemd", export.sources),
        "",
        unit.describe(export.cap, "TimeoutStopSec")
        + " Then systemd SIGKILLs the cgroup (KillMode=mixed).",
        "Its control socket: PROCRUN_SOCKET=/run/<this unit's name>/control.sock procrun status",
    ]
    words = (procrun, *unit.argv[1:])
    argv = " ".join(_quoted(_escape(word).replace("$", "$$")) for word in words)
    command = _escape(" ".join(unit.argv))
    lines = ["[Unit]", f"Description={_escape(export.app)} {_escape(unit.kind)} %i: {command}"]
    lines += [f"PartOf={export.app}.target"]
    lines += ["Wants=network-online.target", "After=network-online.target"]
    release = export.unit("release")
    if release is not None and not unit.release:
        names = " ".join(instances(export, release))
        lines += [f"Requires={names}", f"After={names}"]  # release runs before anything else
    for name in unit.depends_on:
        dependency = export.unit(name)
        if dependency is not None:
            names = " ".join(instances(export, dependency))
            lines += [f"Wants={names}", f"After={names}"]
    lines += ["", "[Service]"]
    if unit.oneshot:
        lines += ["Type=oneshot", "RemainAfterExit=yes"]
    else:
        lines += ["Type=notify", "NotifyAccess=main"]
    lines += [f"ExecStart={argv}", f"WorkingDirectory={_escape(str(export.root))}"]
    lines += [f"User={_escape(user)}"]
    lines += [f"EnvironmentFile={path}" for path in _env_files(export)]
    environment = {"PORT": "%i"} if unit.port is not None else {}
    environment |= {k: _escape(v) for k, v in unit.deadline_env(export.cap).items()}
    environment |= {k: _escape(str(export.root / v)) for k, v in export.procrun_env.items()}
    environment["PROCRUN_SOCKET"] = "%t/%N/control.sock"
    lines += [f"Environment={_quoted(f'{key}={value}')}" for key, value in environment.items()]
    lines += ["RuntimeDirectory=%N", "RuntimeDirectoryMode=0700"]
    if not unit.oneshot:
        start = unit.settings.ready_timeout_seconds + EXPORT_MARGIN_SECONDS
        lines += [f"TimeoutStartSec={duration(start)}"]
    lines += [f"TimeoutStopSec={duration(unit.platform_deadline(export.cap))}", "KillMode=mixed"]
    if not unit.oneshot:
        lines += ["Restart=on-failure"]
    lines += ["", "[Install]", f"WantedBy={export.app}.target"]
    return comment(about) + "".join(f"{line}\n" for line in lines)


def _env_files(export: Export) -> list[str]:
    """The .env files procrun reads: -e files (required), else the project's .env (optional)."""
    if export.options.env_files:
        return [_escape(str(path.resolve())) for path in export.options.env_files]
    return [f"-{_escape(str(export.root / '.env'))}"]


def _procrun(given: str | None) -> str:
    """--procrun, else the procrun beside the running interpreter (a virtualenv's bin), else
    the one on PATH: the absolute path ExecStart needs."""
    if given is not None:
        if not Path(given).is_absolute():
            raise UsageError(f'--procrun: ExecStart needs an absolute path, got "{excerpt(given)}"')
        return given
    beside = Path(sys.executable).parent / "procrun"
    if beside.is_file():
        return str(beside)
    found = shutil.which("procrun")
    if found is None:
        raise UsageError("no procrun beside this Python or on PATH: give --procrun PATH")
    return str(Path(found).absolute())


def _owner(root: Path) -> str:
    uid = root.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _escape(text: str) -> str:
    """A literal value in a unit file: `%` would start a specifier."""
    return text.replace("%", "%%")


def _quoted(assignment: str) -> str:
    if not _NEEDS_QUOTES & set(assignment):
        return assignment
    return '"' + assignment.replace("\\", "\\\\").replace('"', '\\"') + '"'

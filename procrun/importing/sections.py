"""The sections of a supervisord.conf besides [program:x] and [group:x]: why procrun needs none
of them, one line each. Only [supervisord]'s `environment` carries over (translate.py)."""

from __future__ import annotations

from procrun.importing.outcome import Kind, Message
from procrun.importing.supervisordconf import INCLUDE_SECTION, Section
from procrun.quoting import excerpt

_CONTROL_VERBS = "procrun's control socket takes a fixed set of verbs, with no plug-ins"
OTHER_SECTIONS = {
    "supervisord": "procrun never daemonizes, writes no log file or pidfile and logs to stdout; "
    "as PID 1 it installs its signal handlers first and reaps orphans",
    "unix_http_server": "procrun makes its own control socket, owner-only (mode 0600, in a "
    "directory only its user can enter), with no password to set",
    "inet_http_server": "procrun never listens on TCP (supervisord's XML-RPC had "
    "CVE-2017-11610): `docker exec <container> procrun status` reaches its owner-only "
    "control socket",
    "supervisorctl": "procrun status, stop, start, restart and logs find the control socket by "
    "themselves",
    "rpcinterface": _CONTROL_VERBS,
    "ctlplugin": _CONTROL_VERBS,
    "eventlistener": "procrun has no event listeners: max_memory restarts a process whose tree "
    "stays above a limit (superlance's memmon), and procrun exits non-zero when a process "
    "gives up, for the platform to alert on (crashmail)",
    "fcgi-program": "procrun opens no FastCGI socket: run the program under its own server "
    "(gunicorn, uvicorn) in a [program:x]",
    INCLUDE_SECTION: "",
}


def section_note(section: Section) -> list[Message]:
    """The line for a section that is not a program or a group (none for [include], whose files
    were read)."""
    kind = section.name.partition(":")[0].strip()
    reason = OTHER_SECTIONS.get(kind)
    where = f"{section.where}: [{excerpt(section.name)}]"
    if reason is None:
        return [Message(Kind.WARNING, f"{where}: unknown section (supervisord ignores it too)")]
    if not reason:
        return []
    if kind == "supervisord":
        keys = [key for key in section.values if key != "environment"]
        if not keys:
            return []
        where += f" {', '.join(keys)}"
        if "user" in keys:
            reason += "; it needs no root: run the container as a non-root user"
    return [Message(Kind.DROPPED, f"{where}: {reason}")]

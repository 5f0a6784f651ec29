"""The keys of a supervisord [program:x] section: their values read as supervisord reads them
(its defaults, its spellings of numbers, booleans and signals), and why those procrun has no
use for are left out.

Every value is expanded first, as supervisord does. A number, a boolean or a signal must be known
when importing: procrun.toml holds values, not references to the environment.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass

from procrun.errors import ConfigError
from procrun.importing.expansions import expand, literal_text
from procrun.importing.supervisordconf import Section
from procrun.quoting import excerpt

PROGRAM_KEYS = frozenset(
    {
        "command", "process_name", "numprocs", "numprocs_start", "priority", "autostart",
        "startsecs", "startretries", "autorestart", "exitcodes", "stopsignal", "stopwaitsecs",
        "stopasgroup", "killasgroup", "user", "redirect_stderr", "stdout_logfile",
        "stdout_logfile_maxbytes", "stdout_logfile_backups", "stdout_capture_maxbytes",
        "stdout_events_enabled", "stdout_syslog", "stderr_logfile", "stderr_logfile_maxbytes",
        "stderr_logfile_backups", "stderr_capture_maxbytes", "stderr_events_enabled",
        "stderr_syslog", "environment", "directory", "umask", "serverurl",
    }
)  # fmt: skip
"""supervisord 4's keys; it ignores any other, silently."""

TRUE_WORDS = ("yes", "true", "on", "1")
FALSE_WORDS = ("no", "false", "off", "0")

DROPPED = {
    "stopasgroup": "procrun sends the stop signal to the main process only (a TERM to the whole "
    "group makes Celery's pool processes abort the tasks they run), and SIGKILLs the whole "
    "group at the end of the grace",
    "killasgroup": "procrun always SIGKILLs the whole process group at the end of the grace",
    "user": "procrun runs every process as its own user: run the container as that user "
    "(USER {value} in the Dockerfile)",
    "serverurl": "procrun's client finds the control socket by itself",
    "process_name": "procrun names instances {name}.1, {name}.2 (PS={name}.1 in their environment)",
    "stdout_capture_maxbytes": "procrun has no event listeners; --output-format json feeds a "
    "log drain",
    "stdout_syslog": "procrun writes to stdout only; the platform ships that stream",
}
DROPPED |= {
    "stdout_events_enabled": DROPPED["stdout_capture_maxbytes"],
    "stderr_capture_maxbytes": DROPPED["stdout_capture_maxbytes"],
    "stderr_events_enabled": DROPPED["stdout_capture_maxbytes"],
    "stderr_syslog": DROPPED["stdout_syslog"],
}
LOG_FILE_REASON = (
    "procrun writes no log files: every line goes to its stdout, prefixed (`procrun logs "
    "{name}` shows the recent ones); pipe that stream to a log shipper to keep files"
)
# Where a log "file" is the stream procrun relays anyway.
_STREAMS = re.compile(r"/dev/(stdout|stderr|fd/[12])|/proc/self/fd/[12]|none|off", re.IGNORECASE)


@dataclass(frozen=True)
class Reader:
    """Reads the values of one [program:x] section, each expanded with `names`."""

    section: Section
    names: Mapping[str, object]

    def has(self, key: str) -> bool:
        return key in self.section.values

    def raw(self, key: str) -> str | None:
        value = self.section.values.get(key)
        return None if value is None else value.text

    def names_for(self, key: str) -> dict[str, object]:
        value = self.section.values.get(key)
        here = {"here": str(value.here)} if value is not None else {}
        return {**self.names, **here}

    def literal(self, key: str, default: str) -> str:
        """The value, expanded; it may not refer to the environment."""
        if not self.has(key):
            return default
        text = self.raw(key) or ""
        what = self.section.what(key)
        value = literal_text(expand(text, self.names_for(key), what, runtime_env=True))
        if value is None:
            raise ConfigError(
                f"{what}: procrun.toml needs the value itself, not one from the environment; "
                "write it"
            )
        return value.strip()

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        text = self.literal(key, str(default))
        try:
            number = int(text)
        except ValueError:
            number = None
        if number is None or number < minimum:
            raise ConfigError(
                f"{self.section.what(key)}: expected a whole number, {minimum} or more, got "
                f'"{excerpt(text)}"'
            )
        return number

    def boolean(self, key: str, default: bool) -> bool:
        text = self.literal(key, "true" if default else "false").lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        raise ConfigError(
            f'{self.section.what(key)}: expected true or false, got "{excerpt(text)}"'
        )

    def signal(self, key: str) -> signal.Signals:
        text = self.literal(key, "TERM")
        name = text.upper()
        try:
            if name.isdigit():
                return signal.Signals(int(name))
            return signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]
        except (KeyError, ValueError):
            raise ConfigError(
                f'{self.section.what(key)}: unknown signal "{excerpt(text)}"; use a name like '
                "TERM, INT, QUIT, HUP, KILL, USR1, USR2"
            ) from None

    def autorestart(self) -> str:
        """`true`, `false` or `unexpected` (supervisord's default)."""
        text = self.literal("autorestart", "unexpected").lower()
        if text in TRUE_WORDS:
            return "true"
        if text in FALSE_WORDS:
            return "false"
        if text == "unexpected":
            return text
        raise ConfigError(
            f"{self.section.what('autorestart')}: expected true, false or unexpected, got "
            f'"{excerpt(text)}"'
        )

    def exitcodes(self) -> tuple[int, ...]:
        text = self.literal("exitcodes", "0")
        try:
            codes = tuple(int(item) for item in text.split(","))
        except ValueError:
            codes = ()
        if not codes or any(not 0 <= code <= 255 for code in codes):
            raise ConfigError(
                f"{self.section.what('exitcodes')}: expected exit codes 0-255 separated by "
                f'commas, like 0,2, got "{excerpt(text)}"'
            )
        return codes

    def umask(self) -> str | None:
        if not self.has("umask"):
            return None
        text = self.literal("umask", "")
        if not re.fullmatch("[0-7]{1,4}", text):
            raise ConfigError(
                f"{self.section.what('umask')}: expected an octal umask like 022, got "
                f'"{excerpt(text)}"'
            )
        return text


def is_stream(log_file: str) -> bool:
    """Whether a *_logfile value is the process's own stdout/stderr (or nothing)."""
    return _STREAMS.fullmatch(log_file.strip()) is not None

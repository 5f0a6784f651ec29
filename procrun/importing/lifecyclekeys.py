"""A [program:x]'s restart and stop keys -> procrun's restart policy and stop sequence.

The defaults differ, so the restart policy is always written: supervisord's `autorestart`
defaults to `unexpected` (procrun's `on-failure`), procrun's `restart` to `always`. A Celery
worker gets QUIT before the end of its grace written out, as the reference procrun.toml has it;
a type named `worker` that is not one says so, or procrun's Celery rule would apply to it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from procrun.importing.outcome import Kind, Message, Setting
from procrun.importing.programkeys import Reader
from procrun.project.celery_worker import runs_celery_worker

SUPERVISORD_GRACE_SECONDS = 10
"""supervisord's default stopwaitsecs."""
_RESTART = {"true": "always", "false": "never", "unexpected": "on-failure"}
ACKS_LATE_CHECK = (
    "its unfinished tasks go back to the queue at a stop only with task_acks_late = True and "
    "task_reject_on_worker_lost = True in the app's Celery settings, which a supervisord.conf "
    "cannot show: check them"
)


def lifecycle_settings(
    reader: Reader, name: str, command: str, say: Callable[[Message], None]
) -> list[Setting]:
    """The settings for restart and stop keys; what differs from supervisord goes to `say`."""
    section = reader.section
    what = section.what

    def source(key: str, shown: object) -> str:
        value = section.values.get(key)
        if value is None:
            return f"{key}={shown} (supervisord's default)"
        return f"{key}={shown} ({value.path}:{value.line})"

    policy = reader.autorestart()
    settings = [Setting("restart", _RESTART[policy], source("autorestart", policy))]
    startsecs = reader.integer("startsecs", 1)
    if policy == "false":
        if startsecs == 0:
            settings.append(Setting("oneshot", True, "autorestart=false, startsecs=0: runs once"))
            say(
                Message(
                    Kind.NOTE,
                    f"{section.where}: [{section.name}] runs once: if the others must wait for "
                    "it (migrations), name it release in the Procfile: procrun runs release to "
                    "completion before anything else starts, and stops if it fails",
                )
            )
        say(
            Message(
                Kind.NOTE,
                f'{what("autorestart")}=false: restart = "never": an exit other than 0 makes '
                'procrun give up on it and stop everything (on_give_up = "shutdown"), where '
                'supervisord left it EXITED; on_give_up = "continue" keeps the others running',
            )
        )
    if reader.has("startsecs"):
        settings.append(Setting("min_uptime", f"{startsecs}s", source("startsecs", startsecs)))
    if reader.has("startretries"):
        retries = reader.integer("startretries", 3)
        settings.append(Setting("max_restarts", retries, source("startretries", retries)))
        say(
            Message(
                Kind.NOTE,
                f"{what('startretries')}={retries}: max_restarts = {retries}: procrun counts "
                "every failure within restart_window (5 min); supervisord counted only starts "
                "that failed within startsecs",
            )
        )
    codes = reader.exitcodes()
    if codes != (0,):
        shown = ",".join(str(code) for code in codes)
        if policy == "unexpected":
            reason = (
                "procrun expects exit 0 only: on-failure restarts a process that exits with any "
                "other code" + ("" if 0 in codes else ", and not one that exits 0")
            )
        else:
            reason = "supervisord uses exitcodes only with autorestart=unexpected"
        say(Message(Kind.DROPPED, f"{what('exitcodes')}={shown}: {reason}"))
    return settings + _stop_settings(reader, name, command, source, say)


def _stop_settings(
    reader: Reader,
    name: str,
    command: str,
    source: Callable[[str, object], str],
    say: Callable[[Message], None],
) -> list[Setting]:
    settings = []
    stop = reader.signal("stopsignal")
    if reader.has("stopsignal"):
        shown = stop.name.removeprefix("SIG")
        settings.append(Setting("stop_signal", shown, source("stopsignal", shown)))
    grace = reader.integer("stopwaitsecs", SUPERVISORD_GRACE_SECONDS)
    celery = runs_celery_worker(command)
    if reader.has("stopwaitsecs") or (name == "worker" and not celery):
        settings.append(Setting("grace", f"{grace}s", source("stopwaitsecs", grace)))
    if celery:
        if stop is signal.SIGQUIT:
            settings.append(Setting("second_signal", False, "the stop signal is QUIT already"))
        else:
            settings.append(
                Setting(
                    "second_signal",
                    "QUIT",
                    "a Celery worker: QUIT 10 s before the grace ends gives unfinished tasks "
                    "back to the broker at once (with task_acks_late)",
                )
            )
        program = f"{reader.section.where}: [{reader.section.name}]"
        say(Message(Kind.WARNING, f"{program}: a Celery worker: {ACKS_LATE_CHECK}"))
    elif name == "worker":
        settings.append(
            Setting(
                "second_signal",
                False,
                "not a Celery worker: a type named worker would get Celery's 600 s grace and "
                "QUIT otherwise",
            )
        )
    return settings

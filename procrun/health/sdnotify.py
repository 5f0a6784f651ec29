"""procrun itself speaks sd_notify to the manager that started it (systemd `Type=notify`, or any
other that sets NOTIFY_SOCKET): `READY=1` once every process runs, `STATUS=` lines as the
formation changes, `STOPPING=1` when a shutdown begins, and `WATCHDOG=1` every half of
WATCHDOG_USEC when the manager asks for pings. Without NOTIFY_SOCKET none of this exists.

The protocol (sd_notify(3)): newline-separated KEY=VALUE pairs in one datagram to the AF_UNIX
socket named by NOTIFY_SOCKET, a path or, with a leading `@`, an abstract name.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping

import structlog

from procrun.lifecycle import ProcessState
from procrun.supervisor import Supervisor

log = structlog.get_logger()


class Notifier:
    def __init__(self, address: str) -> None:
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._failed = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Notifier | None:
        address = environ.get("NOTIFY_SOCKET", "")
        return cls(address) if address else None

    def send(self, **fields: object) -> None:
        message = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self._socket.sendto(message.encode(), self._address)
        except OSError as error:
            if not self._failed:  # said once: a manager that went away is not an emergency
                self._failed = True
                log.warning("sdnotify.failed", socket=self._address, error=str(error))

    def close(self) -> None:
        self._socket.close()


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Half of WATCHDOG_USEC, when the pings are asked of this process."""
    usec = environ.get("WATCHDOG_USEC", "")
    owner = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (owner and owner != str(pid)):
        return None
    return int(usec) / 2e6


async def report(notifier: Notifier, supervisor: Supervisor, ping_every: float | None) -> None:
    """Tell the manager how the formation does, until cancelled (when procrun exits)."""
    pinging = asyncio.ensure_future(_ping(notifier, ping_every)) if ping_every else None
    try:
        ready: asyncio.Future[list[None]] = asyncio.gather(
            *(
                process.wait_for_state(ProcessState.RUNNING, ProcessState.EXITED)
                for process in supervisor.processes
            )
        )
        stopping: asyncio.Future[None] = asyncio.ensure_future(supervisor.shutdown_begun())
        waiting: set[asyncio.Future[object]] = {ready, stopping}  # type: ignore[arg-type]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            running = sum(p.state is ProcessState.RUNNING for p in supervisor.processes)
            notifier.send(READY=1, STATUS=f"{running} processes running")
        else:
            ready.cancel()
        await stopping
        notifier.send(STOPPING=1, STATUS="stopping")
    finally:
        if pinging is not None:
            pinging.cancel()


async def _ping(notifier: Notifier, every: float) -> None:
    while True:
        notifier.send(WATCHDOG=1)
        await asyncio.sleep(every)  # the manager's rhythm, not a wait for anything

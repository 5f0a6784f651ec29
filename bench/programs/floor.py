"""The start-up floor of any asyncio supervisor: the least a Python tool must do to relay.

usage: python floor.py PROCFILE

Imports asyncio, reads `name: command` lines, runs each command through /bin/sh in its own
process group with its stdout on a pipe, and writes every line to stdout as `name | line`. No
configuration, no restarts, no stop: the benchmark's reference for scenario 6 (start latency),
the time an interpreter and asyncio take on this machine before any supervisor's own work.
"""

from __future__ import annotations

import asyncio
import sys


async def _relay(name: str, command: str) -> None:
    child = await asyncio.create_subprocess_shell(
        command, stdout=asyncio.subprocess.PIPE, process_group=0
    )
    assert child.stdout is not None
    prefix = f"{name} | ".encode()
    async for line in child.stdout:
        sys.stdout.buffer.write(prefix + line)
        sys.stdout.buffer.flush()


async def _relay_all(pairs: list[list[str]]) -> None:
    await asyncio.gather(*(_relay(name.strip(), command) for name, command in pairs))


def main(procfile: str) -> None:
    with open(procfile, encoding="utf-8") as entries:
        pairs = [line.split(":", 1) for line in entries if ":" in line]
    asyncio.run(_relay_all(pairs))


if __name__ == "__main__":
    main(sys.argv[1])

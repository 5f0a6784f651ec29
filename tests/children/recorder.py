"""Records every catchable stop signal it gets as a line `<role> <pid> got SIG...` on stdout.

--ignore: keep running after TERM/INT/QUIT (a program that needs SIGKILL).
--pool N: fork N pool-like children in the same process group (as Celery's prefork pool does);
          they record their signals too, so a test can prove a group-wide TERM never reached them.
--exit-code N: exit with N when a stop signal arrives (default 0); USR1 is only recorded.
"""

import argparse
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--ignore", action="store_true")
parser.add_argument("--pool", type=int, default=0)
parser.add_argument("--exit-code", type=int, default=0)
args = parser.parse_args()
role = "leader"


def say(text: str) -> None:
    os.write(1, f"{role} {os.getpid()} {text}\n".encode())


def on_signal(signum: int, frame: object) -> None:
    say(f"got {signal.Signals(signum).name}")
    if not args.ignore and role == "leader" and signum != signal.SIGUSR1:
        sys.exit(args.exit_code)


for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1):
    signal.signal(sig, on_signal)

pool = []
for _ in range(args.pool):
    pid = os.fork()
    if pid == 0:
        role = "pool"
        say(f"ready pgid={os.getpgrp()}")
        while True:
            signal.pause()
    pool.append(pid)

say(f"ready pgid={os.getpgrp()} pool={','.join(map(str, pool))} env_port={os.environ.get('PORT')}")
while True:
    time.sleep(3600)

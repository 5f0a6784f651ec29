"""A server that comes up after a delay and says so, for the readiness scenario.

usage: upready.py tcp|log|notify STAMPS [--silent]

After a delay that differs per instance (so the moments fall all over the probe's back-off), it
becomes ready: `tcp` binds and listens on $PORT, `log` prints its ready line, `notify` sends
READY=1 to $NOTIFY_SOCKET. The time.monotonic() of that moment (the system-wide monotonic clock,
comparable across processes) goes into STAMPS/<instance> first; then, as real servers do, it
prints a line (`--silent`: nothing, to show the back-off alone). Then it sleeps.
"""

import os
import socket
import sys
import time

mode, stamps = sys.argv[1], sys.argv[2]
silent = "--silent" in sys.argv
instance = os.environ["PS"]
# After every instance has been spawned (procrun spawns them one by one, each spawn blocking its
# loop for a few ms), then spread over the back-off.
time.sleep(1.0 + 0.037 * int(instance.rsplit(".", 1)[1]))
listener = None
if mode == "tcp":
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(os.environ["PORT"])))
    listener.listen()
with open(os.path.join(stamps, instance), "w") as stamp:
    stamp.write(repr(time.monotonic()))
if mode == "log":
    print("server is ready", flush=True)
elif mode == "notify":
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
if not silent and mode != "log":
    print(f"{mode} server up", flush=True)
time.sleep(3600)

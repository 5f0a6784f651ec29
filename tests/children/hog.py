"""Allocates the given number of MB (touching every page so it is resident), then idles."""

import os
import signal
import sys
import time

size = int(sys.argv[1]) * 1024 * 1024
hoard = bytearray(os.urandom(1024) * (size // 1024))
signal.signal(signal.SIGTERM, lambda *_: (os.write(1, b"hog stopping gracefully\n"), sys.exit(0)))
os.write(1, f"hog {os.getpid()} holds {len(hoard) // 1024 // 1024} MB\n".encode())
while True:
    time.sleep(3600)

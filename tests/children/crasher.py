"""Prints a line, then exits with the given code (default 3)."""

import os
import sys

code = int(sys.argv[1]) if len(sys.argv) > 1 else 3
os.write(1, f"crasher {os.getpid()} started, exiting {code}\n".encode())
sys.exit(code)

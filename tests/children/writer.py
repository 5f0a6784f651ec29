"""Writes N numbered lines in raw blocks of a given size that end mid-line, as C stdio does.

Each line is `<tag> <n> <filler>` of a fixed length so a test can check every line arrived whole.
"""

import os
import sys

tag, count, block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = b"".join(f"{tag} {n:08d} {'x' * 40}\n".encode() for n in range(count))
for start in range(0, len(data), block):
    os.write(1, data[start : start + block])

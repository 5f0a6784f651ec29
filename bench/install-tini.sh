#!/bin/sh
# tini from the distribution, for the benchmark's tini columns. Without it the benchmark still
# runs and says that it skipped them. Needs root and apt-get; never fails the build.
command -v tini >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q tini >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q tini >/dev/null 2>&1; }
fi
command -v tini >/dev/null 2>&1 ||
    echo "bench: tini could not be installed (apt-get install tini needs root): its columns are skipped" >&2
exit 0

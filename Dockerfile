# The reference deployment in one image: gunicorn, a Celery worker and Celery Beat (Procfile) under
# procrun, which runs as PID 1 and stops them gracefully. Build: `docker build -t procrun-app .`
# Run: `docker run -e REDIS_URL=redis://host:6379/0 -e PORT=8000 -p 8000:8000 procrun-app`.
# Secrets (REDIS_URL with a password, FLOWER_BASIC_AUTH) come from the platform at run time: none
# is written here, and .dockerignore keeps .env out of the build context.
FROM python:3.12-slim

# PYTHONUNBUFFERED: every line reaches the log stream at once (procrun sets it for its children
# too). No .pyc files written at run time into the root-owned code; pip keeps no cache in a layer.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A non-root user with a fixed uid/gid (files on volumes and Kubernetes' runAsUser can rely on
# it) and a writable home: $HOME is where libraries put their state (gunicorn >= 25.1 its control
# socket, which app/gunicorn.conf.py turns off anyway). procrun's own control socket goes to
# /tmp/procrun-10001/, created by procrun with mode 0700.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home \
        --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, in a layer that is rebuilt only when pyproject.toml changes: procrun's own
# and those of its `app` extra (the reference application), read from pyproject.toml.
COPY pyproject.toml ./
RUN python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(*p["dependencies"], *p["optional-dependencies"]["app"], sep="\n")' > requirements.txt \
 && pip install --requirement requirements.txt \
 && rm requirements.txt

# procrun itself (its dependencies are installed above), then the application and its process
# files. All of it stays owned by root: the app user can read it, not change it.
COPY README.md ./
COPY procrun ./procrun
RUN pip install --no-deps . && rm -rf build procrun.egg-info
COPY app ./app
COPY Procfile procrun.toml ./

# Numeric, so that a platform can check it is not root without reading /etc/passwd.
USER 10001:10001
ENV HOME=/home/app

# gunicorn binds $PORT; without one, procrun gives the first Procfile entry (web) 5000. Render
# and most platforms set PORT themselves.
EXPOSE 5000

# Docker's default, written out: procrun turns SIGTERM into each process's own stop sequence
# (TERM to gunicorn and to the Celery worker's main process, QUIT to the worker before the
# deadline, SIGKILL to what remains). procrun.toml's shutdown_timeout (290 s) fits Render's
# maxShutdownDelaySeconds of 300; `docker stop` waits only 10 s, so run the container with
# `--stop-timeout 300` (or `docker stop -t 300`), or give it `-e PROCRUN_SHUTDOWN_TIMEOUT=8s`
# (docs/render.md, "Other platforms").
STOPSIGNAL SIGTERM

# `procrun status` exits 0 when every process is RUNNING, which means ready: gunicorn has told
# procrun (sd_notify) that it listens, and the Celery worker has logged "celery@<host> ready."
# (procrun's zero-configuration readiness probes, README "Readiness"). It exits 3 when one is not
# (still starting, backing off after a crash, stopped) and 4 when no supervisor answers; Docker
# reserves 2 and treats codes above 1 as errors of the probe, so anything but 0 becomes 1. Its
# table lands in `docker inspect`, with what a starting process waits for. The start period
# covers gunicorn's and Celery's start (a few seconds), and three failures 30 s apart ride out a
# restart with backoff.
HEALTHCHECK --start-period=30s --interval=30s --timeout=10s --retries=3 \
    CMD procrun status || exit 1

# Exec form: procrun is PID 1 and receives the platform's SIGTERM itself (a shell form would put
# /bin/sh there, which ignores it). No argument: the whole Procfile; `procrun start worker` runs
# one process type (render.split.yaml).
CMD ["procrun", "start"]

"""Django settings for mysite, every deployment-specific value from the environment
(mysite/environment.py reads and checks them; README.md lists them).

Celery reads the CELERY_* names below (mysite/celery.py, namespace "CELERY"), as Celery's
"First steps with Django" guide sets it up.
"""

from __future__ import annotations

import os
from pathlib import Path

from mysite.environment import EnvironmentProblem, load

BASE_DIR = Path(__file__).resolve().parent.parent

try:
    ENV = load(os.environ, BASE_DIR)
except EnvironmentProblem as problem:
    # One line, no traceback: manage.py, gunicorn and celery all print a SystemExit's message.
    raise SystemExit(f"mysite: {problem}") from None

SECRET_KEY = ENV.secret_key
DEBUG = ENV.debug
ALLOWED_HOSTS = ENV.allowed_hosts

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # gunicorn serves no files: WhiteNoise serves what collectstatic put in STATIC_ROOT.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mysite.wsgi.application"

DATABASES = {"default": ENV.database}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Written by `collectstatic` in the release phase, so it lives with the data (the code directory
# is read-only in the image), not beside the code.
STATIC_ROOT = ENV.data_dir / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Everything to stderr, which procrun relays with the process's name in front.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": ENV.log_level},
}

# --- Celery (mysite/celery.py reads these, without the CELERY_ prefix) -------------------------

MAX_REPORT_SECONDS = 600
# Redis gives an unacknowledged message to another worker once it is older than the visibility
# timeout, so that must outlast the hard time limit, or a slow job would run twice at once.
CELERY_TASK_SOFT_TIME_LIMIT = MAX_REPORT_SECONDS + 30
CELERY_TASK_TIME_LIMIT = MAX_REPORT_SECONDS + 60
_VISIBILITY_TIMEOUT_SECONDS = CELERY_TASK_TIME_LIMIT + 60

CELERY_BROKER_URL = ENV.broker_url
CELERY_RESULT_BACKEND = ENV.result_backend
# Always explicit for rediss:// (see mysite/environment.py); False for plain redis://.
CELERY_BROKER_USE_SSL = ENV.redis_ssl(ENV.broker_url) or False
CELERY_REDIS_BACKEND_USE_SSL = ENV.redis_ssl(ENV.result_backend) or False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _VISIBILITY_TIMEOUT_SECONDS,
    "health_check_interval": 10,  # a PING before reusing an idle connection a proxy may have cut
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
}
CELERY_REDIS_BACKEND_HEALTH_CHECK_INTERVAL = 10
CELERY_REDIS_SOCKET_TIMEOUT = 10
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 5

# No job lost: a message is acknowledged once its task has run, and given back if the process
# running it dies; so a job may run twice, never zero times (reports.tasks counts the runs).
# procrun's stop sequence for the worker (TERM, then QUIT before the deadline) relies on this:
# QUIT's cold shutdown puts the unacknowledged messages back on the queue at once.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Each pool process reserves one message at a time: a long job never holds another hostage.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = ENV.worker_concurrency
# The reference app's choice (app/tasks.py says why); set explicitly, which also silences
# Celery's warning about its future default.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TIMEZONE = TIME_ZONE

# Beat on RedBeat: the schedule and a lock live in Redis, so one Beat runs per Redis however many
# instances run `beat` (README.md says why not django-celery-beat), and no schedule file is
# written into the (read-only) code directory.
CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"
# Beat wakes at least this often, and a Beat waiting for the lock retries as often: after the old
# Beat releases its lock on SIGTERM, the new one takes over within this many seconds.
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
# A Beat SIGKILLed with the lock held is replaced once the lock expires.
CELERY_REDBEAT_LOCK_TIMEOUT = 30
CELERY_REDBEAT_REDIS_URL = ENV.redis_url
CELERY_REDBEAT_REDIS_USE_SSL = ENV.redis_ssl(ENV.redis_url)
CELERY_REDBEAT_REDIS_OPTIONS = {
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "health_check_interval": 10,
}
CELERY_BEAT_SCHEDULE = {
    "purge-expired-reports": {
        "task": "reports.purge_expired_reports",
        "schedule": ENV.purge_interval_seconds,
        # A run nobody took within its interval is superseded by the next: after an outage the
        # worker does not work through a backlog of stale purges.
        "options": {"expires": ENV.purge_interval_seconds},
    },
}

# --- reports ------------------------------------------------------------------------------------

REPORT_RETENTION_DAYS = ENV.retention_days

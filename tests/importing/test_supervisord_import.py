"""`procrun import supervisord` on real supervisord.conf files: the migration guide's example, a
split config with [group:], [include] and numprocs, one with every key procrun maps, and the
examples' own. Each result must pass `procrun check` and say what the input said; supervisord
itself must read each input, and each imported instance must run the argv supervisord's process
would have run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from procrun.project.environ import load_env_files
from tests.importing.run import (
    REPO,
    checked,
    docs_example,
    docs_procfile,
    imported,
    procfile_of,
    procrun,
    project_copy,
    toml_of,
)
from tests.importing.supervisor import procrun_argvs, supervisord_argvs, supervisord_processes

SECRETS = ("import-test-pw", "import-test-token", "import-test-not-a-secret")
DOCS = "supervisord.conf"  # the migration guide's example, written out
EXAMPLES = [REPO / "examples" / name / "supervisord.conf" for name in ("django", "fastapi")]


def _docs_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / DOCS).write_text(docs_example())
    return project


def test_the_migration_guides_example_becomes_the_guides_procfile(tmp_path: Path) -> None:
    project = _docs_project(tmp_path)
    result = imported(project, "supervisord.conf")
    checked(project)
    assert procfile_of(project) == docs_procfile()
    assert list(procfile_of(project)) == ["worker", "beat", "web"]  # priority 20, 30, default
    processes = toml_of(project)["processes"]
    assert processes["worker"] == {
        "restart": "on-failure",
        "grace": "600s",
        "second_signal": "QUIT",
    }
    assert processes["web"] == {"restart": "always"}
    assert processes["beat"] == {"restart": "on-failure"}  # supervisord's default, unexpected
    dropped = result.lines("dropped")
    assert sum("user=app: procrun runs every process as its own user" in d for d in dropped) == 3
    assert any("[program:worker] stopasgroup=true: procrun sends the stop" in d for d in dropped)
    assert any("[unix_http_server]" in d for d in dropped)
    assert any("[rpcinterface:supervisor]" in d for d in dropped)
    notes = result.lines("note")
    assert any(n.startswith("directory=/app (worker, beat, web): ") for n in notes)
    assert any(
        "task_acks_late = True and task_reject_on_worker_lost" in w for w in result.lines("warning")
    )
    assert result.stdout.splitlines() == ["wrote Procfile", "wrote procrun.toml"]


def test_group_include_and_numprocs(tmp_path: Path) -> None:
    project = project_copy(tmp_path, "grouped/supervisord.conf") / "grouped"
    result = imported(project, "supervisord.conf")
    check = checked(project)
    procfile = procfile_of(project)
    # web (10) first, then the group jobs (100): mailer (200) before worker (999).
    assert list(procfile) == ["web", "mailer_00", "mailer_01", "worker"]
    assert procfile["web"] == "gunicorn --bind 127.0.0.1:${PORT} --workers 2 app:application"
    assert procfile["worker"] == "celery -A tasks worker --loglevel INFO -n worker${PS##*.}@%h"
    assert procfile["mailer_01"] == "python mailer.py --port 8101 --group jobs"
    settings = toml_of(project)
    assert settings["defaults"] == {"env": {"APP_ENV": "production"}}
    worker = settings["processes"]["worker"]
    assert (worker["count"], worker["grace"], worker["second_signal"]) == (3, "300s", "QUIT")
    assert settings["processes"]["web"]["grace"] == "25s"
    assert "cwd" not in worker  # directory=%(here)s/.. (of conf.d/) is the project directory
    assert all(f"worker.{n}: celery" in check for n in (1, 2, 3))
    env_file = project / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert load_env_files([env_file], True, environ={}) == {"SECRET_KEY": SECRETS[2]}
    assert any(
        "[group:jobs] programs=worker,mailer: procrun has no groups" in n
        for n in result.lines("note")
    )
    assert any("secrets: SECRET_KEY written to .env" in n for n in result.lines("note"))
    assert not any(secret in result.stderr + result.stdout for secret in SECRETS)


def test_every_mapped_key(tmp_path: Path) -> None:
    project = project_copy(tmp_path, "everykey.conf")
    result = imported(project, "everykey.conf")
    checked(project)
    procfile = procfile_of(project)
    assert procfile["api"] == (
        'umask 027 && export DATA_DIR="${HOME}/data" && python manage.py migrate && '
        "gunicorn --bind 0.0.0.0:${PORT} app.wsgi"
    )
    assert procfile["legacy"] == "python legacy.py --name 'legacy worker' '$HOME'"
    assert procfile["once"] == "python -c \"print('once of once on ${HOSTNAME}')\""
    processes = toml_of(project)["processes"]
    assert processes["api"] == {
        "restart": "on-failure",
        "min_uptime": "5s",
        "max_restarts": 5,
        "stop_signal": "INT",
        "grace": "25s",
        "env": {"DJANGO_SETTINGS_MODULE": "app.settings"},
    }
    assert processes["worker"] == {"restart": "always", "grace": "600s", "second_signal": "QUIT"}
    assert processes["once"] == {
        "restart": "never",
        "oneshot": True,
        "min_uptime": "0s",
        "cwd": "grouped",
    }
    assert processes["manual"] == {"count": 0, "restart": "on-failure", "stop_signal": "QUIT"}
    assert processes["legacy"] == {"count": 2, "restart": "on-failure"}
    assert load_env_files([project / ".env"], True, environ={}) == {
        "DATABASE_URL": f"postgres://app:{SECRETS[0]}@db/app",
        "API_TOKEN": SECRETS[1],
    }
    for written in ("Procfile", "procrun.toml"):
        assert not any(secret in (project / written).read_text() for secret in SECRETS)
    assert not any(secret in result.stderr + result.stdout for secret in SECRETS)
    dropped = "\n".join(result.lines("dropped"))
    for expected in (
        "[program:api] environment: PATH=%(ENV_PATH)s: the real environment reaches",
        "[program:api] exitcodes=0,2: procrun expects exit 0 only",
        "[program:api] user=app:",
        "[program:api] stdout_logfile=/var/log/api.log (and stdout_logfile_maxbytes, "
        "stdout_logfile_backups): procrun writes no log files",
        "[program:api] killasgroup=true:",
        "[program:api] serverurl=AUTO:",
        "[program:legacy] process_name=legacy-%(process_num)s: procrun names instances legacy.1",
        "[program:legacy] redirect_stderr=false:",
        "[inet_http_server]: procrun never listens on TCP",
        "[eventlistener:memmon]: procrun has no event listeners: max_memory",
    ):
        assert expected in dropped
    assert "stderr_logfile" not in dropped  # /dev/stderr is what procrun relays anyway
    warnings = "\n".join(result.lines("warning"))
    assert (
        'everykey.conf:34: [program:worker] stopwaitsec: unknown key; did you mean "stopwaitsecs"?'
        in warnings
    )
    assert "[program:legacy] command: a $ or ` reaches the program as it is" in warnings
    notes = "\n".join(result.lines("note"))
    assert "[program:api] startretries=5: max_restarts = 5" in notes
    assert '[program:once] autorestart=false: restart = "never"' in notes
    assert "[program:once] runs once: if the others must wait for it (migrations)" in notes
    assert (
        "priority: the Procfile lists the programs in supervisord's start order (api 5, " in notes
    )


def _project(tmp_path: Path, config: str) -> Path:
    """The directory to import in: the config's own (`%(here)s`)."""
    if config == DOCS:
        return _docs_project(tmp_path)
    return (project_copy(tmp_path, config) / config).parent


@pytest.mark.parametrize("config", [DOCS, "grouped/supervisord.conf", "everykey.conf"])
def test_each_instance_runs_what_supervisord_would_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str
) -> None:
    project = _project(tmp_path, config)
    conf = project / Path(config).name
    config = conf.name
    processes = supervisord_processes(conf, monkeypatch)  # supervisord accepts the file
    imported(project, config)
    assert procrun_argvs(conf, project, tmp_path) == supervisord_argvs(conf, processes, tmp_path)


@pytest.mark.parametrize("conf", EXAMPLES, ids=[conf.parent.name for conf in EXAMPLES])
def test_the_examples_supervisord_conf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conf: Path
) -> None:
    assert conf.is_file(), f"{conf}: the example's supervisord.conf is missing"
    processes = supervisord_processes(conf, monkeypatch)
    project = tmp_path / "project"
    imported(tmp_path, conf, "-o", str(project))
    checked(project)
    assert procrun_argvs(conf, project, tmp_path) == supervisord_argvs(conf, processes, tmp_path)


def test_existing_files_are_never_overwritten_without_force(tmp_path: Path) -> None:
    project = project_copy(tmp_path, "everykey.conf")
    (project / ".env").write_text("KEEP=me\n")
    refused = procrun("import", "supervisord", "everykey.conf", cwd=project)
    assert refused.code == 2
    assert refused.stderr == (
        f"procrun: {Path('.env')} exists: give --force to overwrite it, or -o another directory\n"
    )
    assert not (project / "Procfile").exists()
    assert (project / ".env").read_text() == "KEEP=me\n"
    forced = procrun("import", "supervisord", "everykey.conf", "--force", cwd=project)
    assert forced.code == 0, forced.stderr
    assert "DATABASE_URL=" in (project / ".env").read_text()
    assert stat.S_IMODE(os.stat(project / ".env").st_mode) == 0o600


def test_output_directory_is_created(tmp_path: Path) -> None:
    project = project_copy(tmp_path, "grouped/supervisord.conf") / "grouped"
    result = imported(project, "supervisord.conf", "-o", "deploy/procrun")
    assert result.stdout.splitlines()[0] == f"wrote {Path('deploy/procrun/Procfile')}"
    checked(project / "deploy" / "procrun")

"""The project-wide decisions of an import, on small configs read from real files in-process:
where secrets go when programs disagree, [supervisord]'s environment, directories and names that
need the shell or a new spelling, and what the include step says it could not follow."""

from __future__ import annotations

from pathlib import Path

from procrun.importing.supervisordconf import read_conf
from procrun.importing.translate import Imported, translate


def _import(tmp_path: Path, text: str, **files: str) -> Imported:
    tmp_path.mkdir(exist_ok=True)
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(text)
    return translate(read_conf(conf, {}), tmp_path)


def _said(imported: Imported) -> str:
    return "\n".join(str(message) for message in imported.messages)


def _settings(imported: Imported, name: str) -> dict[str, object]:
    entry = next(entry for entry in imported.entries if entry.name == name)
    return {setting.key: setting.value for setting in entry.settings}


def test_a_secret_two_programs_disagree_on(tmp_path: Path) -> None:
    imported = _import(
        tmp_path,
        '[program:a]\ncommand=run a\nenvironment=SECRET_KEY="s3cr3t-1"\n'
        '[program:b]\ncommand=run b\nenvironment=SECRET_KEY="s3cr3t-2",API_KEY="x${y}"\n',
    )
    assert imported.secrets == {"SECRET_KEY": "s3cr3t-1"}
    assert _settings(imported, "b")["env"] == {"SECRET_KEY": "s3cr3t-2", "API_KEY": "x${y}"}
    said = _said(imported)
    assert "warning: [program:b] (" in said
    assert "SECRET_KEY looks like a secret but stays in procrun.toml" in said
    assert "API_KEY looks like a secret" in said
    assert "s3cr3t" not in said


def test_supervisord_environment_is_every_programs(tmp_path: Path) -> None:
    imported = _import(
        tmp_path,
        '[supervisord]\nenvironment=LANG="C.UTF-8",PATH="/opt/bin:%(ENV_PATH)s",'
        'DJANGO_SECRET_KEY="k"\n'
        "[program:web]\ncommand=gunicorn app\n"
        '[program:job]\ncommand=/bin/sh -c "a && b"\n',
    )
    assert imported.secrets == {"DJANGO_SECRET_KEY": "k"}
    assert [(s.key, s.value) for s in imported.defaults] == [("env", {"LANG": "C.UTF-8"})]
    commands = {entry.name: entry.command for entry in imported.entries}
    assert commands == {
        "job": 'export PATH="/opt/bin:${PATH}" && a && b',
        "web": 'PATH="/opt/bin:${PATH}" gunicorn app',
    }


def test_directories(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    imported = _import(
        tmp_path,
        "[program:here]\ncommand=run\ndirectory=%(here)s\n"
        "[program:sub]\ncommand=run\ndirectory=%(here)s/sub/../sub\n"
        "[program:home]\ncommand=run\ndirectory=%(ENV_HOME)s/app\n"
        "[program:elsewhere]\ncommand=run\ndirectory=/srv/app\n",
    )
    assert "cwd" not in _settings(imported, "here")
    assert _settings(imported, "sub")["cwd"] == "sub"
    assert next(e.command for e in imported.entries if e.name == "home") == (
        'cd "${HOME}/app" && run'
    )
    assert _settings(imported, "elsewhere")["cwd"] == "/srv/app"
    alone = _import(tmp_path / "alone", "[program:a]\ncommand=run\ndirectory=/srv/app\n")
    assert "cwd" not in _settings(alone, "a")  # /srv/app is the project directory then
    assert "note: directory=/srv/app (a): procrun runs every process in" in _said(alone)


def test_names_procfile_cannot_take(tmp_path: Path) -> None:
    imported = _import(
        tmp_path,
        "[program:release]\ncommand=migrate\n[program:app.web]\ncommand=gunicorn app\n",
    )
    assert [entry.name for entry in imported.entries] == ["app_web", "release_"]
    said = _said(imported)
    assert "[program:release]: named release_: procrun runs an entry named release once" in said
    assert '[program:app.web]: "app.web" is named app_web in the Procfile' in said


def test_what_the_include_step_says(tmp_path: Path) -> None:
    imported = _import(
        tmp_path,
        "[supervisord]\n[include]\nfiles = conf.d/*.conf none/*.conf\n",
        **{
            "conf.d/a.conf": "[program:a]\ncommand=run\n[include]\nfiles=more/*.conf\n",
            "conf.d/b.conf": "[fcgi-program:php]\ncommand=php-cgi\nsocket=tcp://localhost:9000\n"
            "[custom]\nkey=value\n",
        },
    )
    said = _said(imported)
    assert f"[include] {'none/*.conf'}: no file matches" in said
    assert "conf.d/a.conf: its [include] is not followed" in said
    assert "conf.d/b.conf:1: [fcgi-program:php]: procrun opens no FastCGI socket" in said
    assert "conf.d/b.conf:4: [custom]: unknown section (supervisord ignores it too)" in said


def test_a_value_continued_on_indented_lines(tmp_path: Path) -> None:
    imported = _import(tmp_path, "[program:worker]\ncommand=celery -A app\n    worker -l info\n")
    assert [entry.command for entry in imported.entries] == ["celery -A app worker -l info"]


def test_autostart_false_everywhere_still_starts_something(tmp_path: Path) -> None:
    imported = _import(
        tmp_path,
        "[program:a]\ncommand=run\nautostart=false\n[program:b]\ncommand=run\nautostart=false\n",
    )
    assert all("count" not in _settings(imported, name) for name in ("a", "b"))
    assert "warning: every program has autostart=false" in _said(imported)
    some = _import(
        tmp_path / "some", "[program:a]\ncommand=run\nautostart=false\n[program:b]\ncommand=run\n"
    )
    assert _settings(some, "a")["count"] == 0

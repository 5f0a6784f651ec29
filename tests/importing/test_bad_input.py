"""Bad input to `procrun import supervisord`: one line on stderr naming the file, the line and
the fix, exit code 2, no traceback and no file written; and supervisord rejects the same files,
so the importer is not stricter than the program it replaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.importing.run import CONFIGS, procrun
from tests.importing.supervisor import supervisord_processes

BAD = CONFIGS / "bad"
CASES = {
    "bad_number.conf": "bad_number.conf:6: [program:web] numprocs: expected a whole number, 1 or "
    'more, got "two"',
    "no_command.conf": "no_command.conf:3: [program:web] has no command=; add command=<program "
    "and its arguments>",
    "procfile.conf": 'procfile.conf:1: expected a section header like "[program:web]", got "web: '
    'gunicorn app:app"; is this a supervisord.conf?',
    "unknown_expansion.conf": "unknown_expansion.conf:3: [program:web] command: unknown "
    'expansion %(prgram_name)s; did you mean "program_name"?; supervisord knows ',
    "bad_autorestart.conf": "bad_autorestart.conf:4: [program:web] autorestart: expected true, "
    'false or unexpected, got "sometimes"',
    "bad_signal.conf": 'bad_signal.conf:4: [program:web] stopsignal: unknown signal "TERMINATE"',
    "unclosed_quote.conf": "unclosed_quote.conf:3: [program:web] command has no closing "
    'quotation mark ("); close it',
    "unknown_program.conf": "unknown_program.conf:3: [group:jobs] programs: no "
    "[program:worker] (supervisord refuses it too)",
    "numprocs_without_process_num.conf": "numprocs_without_process_num.conf:2: [program:web] "
    "process_name: numprocs=2 needs %(process_num)s in process_name",
    "lone_percent.conf": 'lone_percent.conf:3: [program:web] command: "%Y" is not an '
    "expansion: supervisord rejects it too",
}
SUPERVISORD_ACCEPTS = {"unclosed_quote.conf"}  # it fails later, when it spawns the program


def _refused(tmp_path: Path, config: Path | str) -> str:
    result = procrun("import", "supervisord", config, "-o", tmp_path / "out", cwd=BAD)
    assert result.code == 2, result
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("procrun: ")
    assert not (tmp_path / "out").exists()
    return result.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_line_with_file_and_line(tmp_path: Path, name: str) -> None:
    assert CASES[name] in _refused(tmp_path, name)


@pytest.mark.parametrize("name", sorted(set(CASES) - SUPERVISORD_ACCEPTS))
def test_supervisord_rejects_them_too(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r".") as raised:
        supervisord_processes(BAD / name, monkeypatch)
    assert "does not include supervisord section" not in str(raised.value)


def test_a_missing_file(tmp_path: Path) -> None:
    assert "no such file: " in _refused(tmp_path, tmp_path / "supervisord.cnf")


def test_not_utf8(tmp_path: Path) -> None:
    conf = tmp_path / "latin1.conf"
    conf.write_bytes(b"[program:caf\xe9]\ncommand=true\n")
    assert f"{conf}:1: not UTF-8 text (byte 0xe9)" in _refused(tmp_path, conf)


def test_an_environment_error_never_shows_its_value(tmp_path: Path) -> None:
    conf = tmp_path / "env.conf"
    conf.write_text('[program:web]\ncommand=gunicorn app\nenvironment=DB_PASSWORD "hunter2"\n')
    message = _refused(tmp_path, conf)
    assert f"{conf}:3: [program:web] environment: expected KEY=" in message
    assert "hunter2" not in message


def test_an_include_that_is_not_ini(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "web.conf").write_text("[program:web]\ncommand=gunicorn app\n= x\n")
    conf = tmp_path / "supervisord.conf"
    conf.write_text("[supervisord]\n[include]\nfiles = conf.d/*.conf\n")
    message = _refused(tmp_path, conf)
    assert 'conf.d/web.conf:3: expected "key = value" or "[section]", got "= x"' in message


def test_a_line_break_inside_quotes(tmp_path: Path) -> None:
    conf = tmp_path / "multiline.conf"
    conf.write_text('[program:web]\ncommand=/bin/sh -c "migrate &&\n  gunicorn app"\n')
    assert f"{conf}:2: [program:web] command holds a line break inside quotes" in _refused(
        tmp_path, conf
    )

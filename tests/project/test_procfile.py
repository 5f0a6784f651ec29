import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procrun.errors import ConfigError
from procrun.project.procfile import Procfile, ProcfileEntry, load_procfile, parse_procfile

PROCFILE = Path("Procfile")


def parse(text: str, path: Path = PROCFILE) -> Procfile:
    return parse_procfile(text, path)


def error_of(text: str, path: Path = PROCFILE) -> str:
    with pytest.raises(ConfigError) as info:
        parse_procfile(text, path)
    return str(info.value)


def test_entries_in_order_with_line_numbers() -> None:
    procfile = parse("# comment\nweb: gunicorn app:app\n\nworker: celery -A proj worker\n")
    assert procfile.path == PROCFILE
    assert procfile.entries == (
        ProcfileEntry("web", "gunicorn app:app", 2, PROCFILE),
        ProcfileEntry("worker", "celery -A proj worker", 4, PROCFILE),
    )
    assert procfile.names == ("web", "worker")


def test_get() -> None:
    procfile = parse("web: a\nworker: b\n")
    assert procfile.get("worker") == ProcfileEntry("worker", "b", 2, PROCFILE)
    assert procfile.get("beat") is None


def test_whitespace_around_name_and_command_is_trimmed() -> None:
    procfile = parse("  web :   gunicorn app:app --bind 0.0.0.0:$PORT  \n\t# indented comment\n")
    assert procfile.entries == (
        ProcfileEntry("web", "gunicorn app:app --bind 0.0.0.0:$PORT", 1, PROCFILE),
    )


def test_no_space_after_colon() -> None:
    assert parse("web:gunicorn").entries == (ProcfileEntry("web", "gunicorn", 1, PROCFILE),)


def test_name_characters() -> None:
    assert parse("Web_2-a: x").names == ("Web_2-a",)


def test_crlf_and_bom() -> None:
    procfile = parse("\ufeffweb: gunicorn app:app\r\n\r\nworker: celery worker\r\n")
    assert procfile.entries == (
        ProcfileEntry("web", "gunicorn app:app", 1, PROCFILE),
        ProcfileEntry("worker", "celery worker", 3, PROCFILE),
    )


def test_form_feed_does_not_shift_line_numbers() -> None:
    # str.splitlines() would count the form feed as a line break; editors do not.
    assert parse("web: a\x0cb\nworker: c\n").get("worker") == ProcfileEntry(
        "worker", "c", 2, PROCFILE
    )


def test_line_without_colon() -> None:
    assert (
        error_of("web: a\n\nweb gunicorn app\n")
        == 'Procfile:3: expected "<name>: <command>", got "web gunicorn app"'
    )


def test_missing_name_before_command_with_colon() -> None:
    assert (
        error_of("gunicorn app:app\n")
        == 'Procfile:1: expected "<name>: <command>", got "gunicorn app:app"'
    )


def test_empty_name() -> None:
    assert error_of(": gunicorn\n") == 'Procfile:1: expected "<name>: <command>", got ": gunicorn"'


def test_long_line_is_shortened() -> None:
    message = error_of("x" * 200)
    assert message == f'Procfile:1: expected "<name>: <command>", got "{"x" * 77}..."'


def test_control_characters_are_escaped() -> None:
    assert (
        error_of("\x1b[2J oops") == 'Procfile:1: expected "<name>: <command>", got "\\x1b[2J oops"'
    )


def test_path_as_given() -> None:
    message = error_of("web gunicorn", Path("deploy/Procfile.dev"))
    assert message.startswith("deploy/Procfile.dev:1: ")


def test_invalid_name() -> None:
    assert error_of("web.app: gunicorn\n") == (
        'Procfile:1: invalid process name "web.app": use only letters, digits, "_" and "-" '
        "([A-Za-z0-9_-]+)"
    )


def test_duplicate_names_both_lines() -> None:
    assert (
        error_of("# x\nweb: a\nworker: b\n\nweb: c\n")
        == 'Procfile:5: duplicate process "web" (first defined on line 2)'
    )


@pytest.mark.parametrize("line", ["web:", "web:   ", "web: \t"])
def test_empty_command(line: str) -> None:
    assert error_of(f"worker: x\n{line}\n") == 'Procfile:2: process "web" has no command'


def test_nul_in_command() -> None:
    assert error_of("web: a\0b") == 'Procfile:1: the command of "web" contains a NUL character'


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "\ufeff\r\n"])
def test_no_entries(text: str) -> None:
    assert (
        error_of(text) == 'Procfile: no processes defined; add a line like "web: gunicorn app:app"'
    )


def test_load(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_bytes(b"\xef\xbb\xbfweb: gunicorn\r\n")
    assert load_procfile(path) == Procfile(path, (ProcfileEntry("web", "gunicorn", 1, path),))


def test_load_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_procfile(Path("Procfile"))
    assert str(info.value) == (
        f"Procfile not found: {tmp_path / 'Procfile'} (use -f/--procfile to name another)"
    )


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r": is a directory, not a Procfile$") as info:
        load_procfile(tmp_path)
    assert str(info.value).startswith(str(tmp_path))


def test_load_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_bytes(b"web: a\nworker: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_procfile(path)
    assert str(info.value) == f"{path}:2: not UTF-8 text (byte 0xe9); save the Procfile as UTF-8"


def test_load_through_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "Procfile"
    with pytest.raises(ConfigError) as info:
        load_procfile(path)
    assert str(info.value) == f"{path}: cannot read: Not a directory"


_NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
_COMMANDS = (
    st.text(
        st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="\0"),
        min_size=1,
    )
    .map(str.strip)
    .filter(lambda command: command not in ("", "~"))  # `name: ~` removes an earlier entry
)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_parses_or_fails_with_a_located_config_error(text: str) -> None:
    try:
        parse(text)
    except ConfigError as exc:
        message = str(exc)
    else:
        return
    match = re.match(r"Procfile(?::(\d+))?: ", message)
    assert match, message
    if match.group(1) is None:
        assert "no processes defined" in message
    else:
        assert 1 <= int(match.group(1)) <= text.count("\n") + 1


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_NAMES, _COMMANDS, min_size=1), st.sampled_from(["\n", "\r\n"]))
def test_written_entries_parse_back(entries: dict[str, str], newline: str) -> None:
    text = newline.join(f"{name}: {command}" for name, command in entries.items())
    parsed = parse(text)
    assert [(e.name, e.command) for e in parsed.entries] == list(entries.items())
    assert [e.line for e in parsed.entries] == list(range(1, len(entries) + 1))

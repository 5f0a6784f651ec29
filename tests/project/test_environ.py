import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procrun.errors import ConfigError
from procrun.project.environ import load_env_files, merge_environment, own_virtualenv_bin


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(paths: list[Path], required: bool = True) -> str:
    with pytest.raises(ConfigError) as info:
        load_env_files(paths, required, environ={})
    return str(info.value)


def test_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ".env",
        "# comment\n"
        "A=1\n"
        "export B = two words\n"
        "C='single # not a comment'\n"
        'D="line1\\nline2"\n'
        "E=value # comment\n"
        "F=\n"
        "BARE\n",
    )
    assert load_env_files([path], False, environ={}) == {
        "A": "1",
        "B": "two words",
        "C": "single # not a comment",
        "D": "line1\nline2",
        "E": "value",
        "F": "",
    }


def test_later_files_override_earlier(tmp_path: Path) -> None:
    first = write(tmp_path, "a.env", "A=1\nB=1\n")
    second = write(tmp_path, "b.env", "B=2\nC=2\n")
    assert load_env_files([first, second], True, environ={}) == {"A": "1", "B": "2", "C": "2"}


def test_interpolation_sees_earlier_files_and_defaults(tmp_path: Path) -> None:
    first = write(tmp_path, "a.env", "HOST=localhost\n")
    second = write(tmp_path, "b.env", "URL=redis://${HOST}:${PORT:-6379}/0\nRAW=$HOST\n")
    assert load_env_files([first, second], True, environ={}) == {
        "HOST": "localhost",
        "URL": "redis://localhost:6379/0",
        "RAW": "$HOST",
    }


def test_interpolation_prefers_the_real_environment(tmp_path: Path) -> None:
    # The child will see the real HOST (merge_environment), so ${HOST} must expand to it too.
    path = write(tmp_path, ".env", "HOST=localhost\nURL=http://${HOST}/\n")
    values = load_env_files([path], False, environ={"HOST": "prod.internal"})
    assert values == {"HOST": "localhost", "URL": "http://prod.internal/"}
    assert merge_environment({"HOST": "prod.internal"}, values)["HOST"] == "prod.internal"


def test_interpolation_defaults_to_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCRUN_TEST_VALUE", "from-os")
    path = write(tmp_path, ".env", "X=${PROCRUN_TEST_VALUE}\n")
    assert load_env_files([path], False) == {"X": "from-os"}


def test_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"\xef\xbb\xbfA=1\r\nB=2\r\n")
    assert load_env_files([path], False, environ={}) == {"A": "1", "B": "2"}


def test_missing_optional_file_is_skipped(tmp_path: Path) -> None:
    assert load_env_files([tmp_path / ".env"], False, environ={}) == {}


def test_missing_required_file(tmp_path: Path) -> None:
    assert error_of([tmp_path / "prod.env"]) == f"env file not found: {tmp_path / 'prod.env'}"


def test_missing_required_file_relative_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert error_of([Path("prod.env")]) == f"env file not found: {tmp_path / 'prod.env'}"


def test_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path, ".env", "A=1\n\nbad line\nB=2\n")
    assert (
        error_of([path], required=False) == f"{path}:3: cannot parse 'bad line': expected KEY=VALUE"
    )


def test_bad_line_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, ".env", "A=1\nbad line\n")
    assert error_of([Path(".env")]) == ".env:2: cannot parse 'bad line': expected KEY=VALUE"


def test_unterminated_quote(tmp_path: Path) -> None:
    path = write(tmp_path, ".env", 'A=1\nB="open\n')
    assert error_of([path]) == f"{path}:2: cannot parse 'B=\"open': expected KEY=VALUE"


def test_bad_line_after_crlf_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\r\n\r\n\r\nnot valid\r\n")
    assert error_of([path]) == f"{path}:4: cannot parse 'not valid': expected KEY=VALUE"


def test_key_with_equals_sign(tmp_path: Path) -> None:
    path = write(tmp_path, ".env", "'A=B'=1\n")
    assert error_of([path]) == (
        f"{path}:1: invalid variable name 'A=B': it must not contain '=' or NUL"
    )


def test_nul_in_value(tmp_path: Path) -> None:
    path = write(tmp_path, ".env", "A=1\nB=x\0y\n")
    assert error_of([path]) == f"{path}:2: the value of B contains a NUL character"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\nB=caf\xe9\n")
    assert error_of([path]) == f"{path}:2: not UTF-8 text (byte 0xe9); save it as UTF-8"


def test_directory_is_an_error_even_when_optional(tmp_path: Path) -> None:
    assert error_of([tmp_path], required=False) == f"{tmp_path}: is a directory, not an env file"


def test_merge_real_environment_wins() -> None:
    real = {"DATABASE_URL": "postgres://platform", "HOME": "/root"}
    dotenv = {"DATABASE_URL": "postgres://localhost", "DEBUG": "1"}
    assert merge_environment(real, dotenv) == {
        "DATABASE_URL": "postgres://platform",
        "HOME": "/root",
        "DEBUG": "1",
    }


_ENV_LINES = st.one_of(
    st.sampled_from(
        [
            "A=1", "export B = two", "C='x # y'", 'D="a\\nb"', 'E="multi', 'line"', "F=${A}",
            "G=${MISSING:-def}", "bad line", "H", "'I=J'=1", "# comment", "", "  ", "K = v # c",
            "L=\x00", "=1", "'quoted key'=1",
        ]
    ),
    st.text(max_size=15),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(
        st.text(),
        st.tuples(st.lists(_ENV_LINES, max_size=6), st.sampled_from(["\n", "\r\n", "\r"])).map(
            lambda parts: parts[1].join(parts[0])
        ),
    )
)
def test_any_text_loads_or_fails_with_a_located_config_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("env") / ".env"
    # Bytes, so the parser sees exactly this text whatever the platform's line separator.
    path.write_bytes(text.encode("utf-8"))
    try:
        values = load_env_files([path], True, environ={})
    except ConfigError as exc:
        message = str(exc)
    else:
        assert all(key and "=" not in key and "\0" not in key for key in values)
        assert all("\0" not in value for value in values.values())
        return
    match = re.match(rf"{re.escape(str(path))}:(\d+): ", message)
    assert match, message
    assert 1 <= int(match.group(1)) <= len(re.split(r"\r\n|\n|\r", text))


def test_the_virtualenv_procrun_runs_from_goes_first_on_path() -> None:
    venv = "/srv/app/.venv"
    assert own_virtualenv_bin("/usr/bin:/bin", venv, "/usr") == Path(venv) / "bin"
    assert own_virtualenv_bin(f"{venv}/bin:/usr/bin", venv, "/usr") is None, "already there"
    assert own_virtualenv_bin("/usr/bin", "/usr", "/usr") is None, "not in a virtualenv"
    assert own_virtualenv_bin(None, venv, "/usr") == Path(venv) / "bin"

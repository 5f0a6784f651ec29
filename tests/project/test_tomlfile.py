from pathlib import Path

from procrun.project.tomlfile import TomlFile, key_lines


def test_tables_and_keys() -> None:
    text = 'top = 1\n\n[processes.web]\ngrace = "1s"\n  env = { A = "1" }\n[defaults]\ncount = 2\n'
    assert key_lines(text) == {
        ("top",): 1,
        ("processes",): 3,  # the header defines its parent table too
        ("processes", "web"): 3,
        ("processes", "web", "grace"): 4,
        ("processes", "web", "env"): 5,
        ("defaults",): 6,
        ("defaults", "count"): 7,
    }


def test_a_misspelt_parent_table_has_the_headers_line() -> None:
    assert key_lines("# settings\n[process.web]\ngrace = 1\n")[("process",)] == 2


def test_dotted_and_quoted_keys() -> None:
    text = "[ processes ]\nweb . grace = 1\n'beat'.count = 2\n\"w\\u0030\".restart = 3\n"
    lines = key_lines(text)
    assert lines[("processes", "web")] == 2
    assert lines[("processes", "web", "grace")] == 2
    assert lines[("processes", "beat", "count")] == 3
    assert lines[("processes", "w0", "restart")] == 4


def test_first_occurrence_wins_and_array_tables_count() -> None:
    lines = key_lines("[[jobs]]\nname = 1\n[[jobs]]\nname = 2\n")
    assert (lines[("jobs",)], lines[("jobs", "name")]) == (1, 2)


def test_multiline_strings_are_skipped() -> None:
    text = "a = \"\"\"\nb = 1\n[fake]\n\"\"\"\nc = '''\nd = 2\n'''\ne = 3\n"
    assert key_lines(text) == {("a",): 1, ("c",): 5, ("e",): 8}


def test_comments_and_crlf() -> None:
    assert key_lines("# x = 1\r\n[t] # table\r\nk = 1\r\n") == {("t",): 2, ("t", "k"): 3}


def test_line_of_falls_back_to_the_enclosing_table_but_not_past_root() -> None:
    lines = {("tool",): 1, ("tool", "procrun"): 4, ("tool", "procrun", "processes", "web"): 6}
    file = TomlFile(Path("pyproject.toml"), {}, lines)
    root = ("tool", "procrun")
    assert file.line_of(("tool", "procrun", "processes", "web", "grace"), root) == 6
    assert file.line_of(("tool", "procrun", "processes", "beat", "grace"), root) == 4
    assert file.line_of(("tool", "procrun", "x")) == 4
    assert file.line_of(("tool", "x"), root) is None
    assert file.line_of(("other",)) is None

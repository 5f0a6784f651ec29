import subprocess

import pytest

from procrun.project.shell import last_step, program_of, shell_argv


@pytest.mark.parametrize(
    ("command", "script"),
    [
        ("gunicorn app:app -b 0.0.0.0:$PORT", "exec gunicorn app:app -b 0.0.0.0:$PORT"),
        ("FOO=1 BAR='a b' python -m x", "FOO=1 BAR='a b' exec python -m x"),
        ("celery -A app worker > /dev/null 2>&1", "exec celery -A app worker > /dev/null 2>&1"),
    ],
)
def test_simple_commands_are_execed_so_the_program_leads_the_group(
    command: str, script: str
) -> None:
    assert shell_argv(command) == ("/bin/sh", "-c", script)


@pytest.mark.parametrize(
    ("command", "script"),
    [
        (
            "python manage.py migrate && gunicorn app",
            "python manage.py migrate && exec gunicorn app",
        ),
        ("a; b", "a; exec b"),
        ("cd app && FOO=1 gunicorn x", "cd app && FOO=1 exec gunicorn x"),
        ("echo 'a && b' && run", "echo 'a && b' && exec run"),
    ],
)
def test_a_list_of_simple_commands_execs_its_last(command: str, script: str) -> None:
    """The last step leads once it runs: it gets the stop signal and its grace."""
    assert shell_argv(command) == ("/bin/sh", "-c", script)


@pytest.mark.parametrize(
    "command",
    [
        "a || b",
        "a && b | c",
        "a | b",
        "sleep 1 &",
        "if true; then x; fi",
        "exec >log 2>&1",
        "echo $(date)",
        "FOO=1",
        "echo 'unbalanced",
    ],
)
def test_compound_commands_run_under_the_shell_unchanged(command: str) -> None:
    assert shell_argv(command) == ("/bin/sh", "-c", command)


@pytest.mark.parametrize(
    ("command", "script", "program"),
    [
        ("exec gunicorn app", "exec gunicorn app", "gunicorn"),
        ("FOO=1 exec gunicorn app", "FOO=1 exec gunicorn app", "gunicorn"),
        ("cd app && exec gunicorn x", "cd app && exec gunicorn x", "gunicorn"),
    ],
)
def test_a_command_that_execs_already_is_left_as_it_is(
    command: str, script: str, program: str
) -> None:
    """No second exec; the program it execs leads (and is what the fail-fast check looks up)."""
    assert shell_argv(command) == ("/bin/sh", "-c", script)
    assert last_step(command) == (command.split("&& ")[-1])
    assert program_of(command.split("&& ")[-1]) == program


def test_assignments_before_exec_reach_the_program() -> None:
    out = subprocess.run(
        shell_argv("GREETING='hello there' printenv GREETING"), capture_output=True, check=True
    )
    assert out.stdout == b"hello there\n"

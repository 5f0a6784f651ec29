"""Overlays through the real CLI: `-f` and `--config` repeated or as lists in PROCRUN_PROCFILE
and PROCRUN_CONFIG, `procrun check` naming each entry's file, and bad overlays as one line on
stderr with exit 2."""

from pathlib import Path

import pytest

from tests.harness import Procrun

PROCFILE = "web: sleep 60\nworker: sleep 61\nbeat: sleep 62\n"
DEV = "# development\nredis: sleep 63\nbeat: ~\nweb: sleep 64\n"
TOML = '[processes.web]\ngrace = "20s"\n'
DEV_TOML = '[processes.worker]\ndepends_on = ["redis"]\n\n[processes.redis]\ngrace = "5s"\n'
OVERLAYS = ("-f", "Procfile", "-f", "Procfile.dev", "--config", "procrun.toml")


def check(directory: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    (directory / "Procfile.dev").write_text(DEV)
    (directory / "procrun.dev.toml").write_text(DEV_TOML)
    with Procrun(directory, PROCFILE, *args, command=("check",), env=env, toml=TOML) as procrun:
        code = procrun.wait()
        out = procrun.rest()
    assert (code, procrun.stderr) == (0, ""), procrun.stderr
    return out


def test_check_names_the_file_of_each_entry_and_what_it_replaced(tmp_path: Path) -> None:
    out = check(tmp_path, *OVERLAYS, "--config", "procrun.dev.toml")
    assert out[:3] == [
        "Procfile: Procfile, Procfile.dev",
        "removed: beat (Procfile.dev:3, was Procfile:3)",
        "settings: procrun.toml, procrun.dev.toml",
    ]
    entries = [line for line in out if not line.startswith(" ") and ".1: " in line]
    assert entries == [
        "web.1: sleep 64 (Procfile.dev:4, replaces Procfile:1)",
        "worker.1: sleep 61 (Procfile:2)",
        "redis.1: sleep 63 (Procfile.dev:2)",
    ]
    assert "    depends on: redis (ready)" in out
    assert "start order: web, redis; then worker" in out
    # web keeps procrun.toml's grace; redis gets the dev file's.
    assert any(line.startswith("    grace 20 s ") for line in out)
    assert any(line.startswith("    grace 5 s ") for line in out)


def test_the_environment_variables_take_lists(tmp_path: Path) -> None:
    env = {
        "PROCRUN_PROCFILE": "Procfile:Procfile.dev",
        "PROCRUN_CONFIG": "procrun.toml:procrun.dev.toml:",  # an empty item is dropped
    }
    out = check(tmp_path, env=env)
    assert out[0] == "Procfile: Procfile, Procfile.dev"
    assert "settings: procrun.toml, procrun.dev.toml" in out


def test_an_error_names_the_overlay_line_its_entry_came_from(tmp_path: Path) -> None:
    (tmp_path / "Procfile.dev").write_text("redis: no-such-program-0xc0ffee --port 6390\n")
    with Procrun(
        tmp_path, PROCFILE, "-f", "Procfile", "-f", "Procfile.dev", command=("start",)
    ) as procrun:
        assert procrun.wait() == 2
    assert procrun.stderr.startswith(
        'procrun: Procfile.dev:1: "no-such-program-0xc0ffee" not found on PATH'
    ), procrun.stderr


@pytest.mark.parametrize(
    ("overlay", "args", "message"),
    [
        (
            "redis: sleep 1\n",
            ("-f", "Procfile", "-f", "Procfile.devv"),
            '-f/--procfile: no such file: {tmp}/Procfile.devv; did you mean "Procfile.dev"?',
        ),
        (
            "# dev\nredis sleep 1\n",
            ("-f", "Procfile", "-f", "Procfile.dev"),
            'Procfile.dev:2: expected "<name>: <command>", got "redis sleep 1"',
        ),
        (
            "redis: ~\n",
            ("-f", "Procfile", "-f", "Procfile.dev"),
            'Procfile.dev:1: nothing to remove: no earlier Procfile defines "redis"',
        ),
        (
            ": sleep 1\n",
            ("-f", "Procfile", "-f", "Procfile.dev"),
            'Procfile.dev:1: expected "<name>: <command>", got ": sleep 1"',
        ),
        (
            "redis: sleep 1\n",
            ("--config", "procrun.toml", "--config", "procrun.dev.tom"),
            '--config: no such file: {tmp}/procrun.dev.tom; did you mean "procrun.dev.toml"?',
        ),
        (
            "redis: sleep 1\n",
            ("--config", "procrun.toml", "--config", "procrun.dev.toml"),
            'procrun.dev.toml:2: depends_on: no Procfile entry "redis"',
        ),
    ],
)
@pytest.mark.parametrize("command", ["start", "check"])
def test_a_bad_overlay_is_one_line_and_exit_2(
    tmp_path: Path, command: str, overlay: str, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "Procfile.dev").write_text(overlay)
    (tmp_path / "procrun.dev.toml").write_text(DEV_TOML)
    with Procrun(tmp_path, PROCFILE, *args, command=(command,), toml=TOML) as procrun:
        code = procrun.wait()
        out = procrun.rest()
    assert (code, out) == (2, [])
    assert procrun.stderr == f"procrun: {message.format(tmp=tmp_path)}\n"

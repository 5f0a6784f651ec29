"""Bad input to `procrun export`: one line on stderr that says what was wrong, exit code 2, nothing
on stdout and no file written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.export.projects import export, sample_project


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("kubernets", "--image", "x"),
            'unknown export format "kubernets"; did you mean "kubernetes"?; formats: kubernetes, '
            "compose, systemd, render",
        ),
        (("helm",), 'unknown export format "helm"; formats: kubernetes, compose, systemd, render'),
        (("kubernetes",), "export kubernetes: --image is required"),
        (("compose", "-o", "out"), "export compose: --image is required"),
        (
            ("compose", "--image", "x", "-c", "worker"),
            '-c/--concurrency: expected "<name>=<count>"',
        ),
        (
            ("compose", "--image", "x", "-c", "wroker=2"),
            'unknown process "wroker"; did you mean "worker"?',
        ),
        (("render", "wbe"), 'unknown process "wbe"; did you mean "web"?'),
        (("systemd",), "export systemd writes 6 files: give -o DIR"),
        (("systemd", "-o", "out", "--procrun", "bin/procrun"), "--procrun: ExecStart needs an"),
        (("kubernetes", "--image", "x", "--user", "app"), '--user: expected a numeric "<uid>"'),
        (("render", "--blueprint", "nope.yaml"), "--blueprint: no such file: "),
        (("render", "-f", "Procfile.nope"), "Procfile not found: "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    project = sample_project(tmp_path)
    result = export(project, *args)
    assert result.code == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("procrun: ")
    assert message in result.stderr
    assert result.stdout == ""
    assert not (project / "out").exists()


def test_a_procfile_error_names_the_file_and_line(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    (project / "Procfile").write_text("web: gunicorn app\nworker celery\n")
    result = export(project, "render")
    assert result.code == 2
    assert result.stderr == (
        'procrun: Procfile:2: expected "<name>: <command>", got "worker celery"\n'
    )


def test_a_settings_error_names_the_file_and_line(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    (project / "procrun.toml").write_text('[processes.web]\ngrace = "soon"\n')
    result = export(project, "kubernetes", "--image", "x")
    assert result.code == 2
    assert result.stderr.startswith(f"procrun: {project / 'procrun.toml'}:2: grace: invalid ")
    assert result.stderr.count("\n") == 1


def test_a_missing_format_is_a_usage_error(tmp_path: Path) -> None:
    result = export(sample_project(tmp_path))
    assert result.code == 2
    assert "Missing argument 'FORMAT'" in result.stderr
    assert "Traceback" not in result.stderr

"""`gitml ci check`: generated pipelines still name entry points and stages that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitml.ci.check import check_pipelines
from gitml.ci.init import init_pipelines
from gitml.ci.options import InitOptions
from tests.conftest import run_cli
from tests.registry._util import commit, tag

MLPROJECT = "name: demo\nentry_points:\n  main:\n    command: python train.py\n  train:\n    command: python train.py\n"


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "MLproject").write_text(MLPROJECT)
    return repo


def test_fresh_pipelines_pass(project: Path) -> None:
    init_pipelines(project, "github", InitOptions())
    init_pipelines(project, "gitlab", InitOptions(entry_point="train", stage="Staging"))
    result = check_pipelines(project)
    assert result.problems == ()
    assert ".gitlab-ci.yml" in result.files and ".github/workflows/gitml-pr.yml" in result.files


def test_a_removed_entry_point_is_reported_with_file_and_line(project: Path) -> None:
    init_pipelines(project, "github", InitOptions(entry_point="train"))
    (project / "MLproject").write_text(
        MLPROJECT.replace("  train:\n    command: python train.py\n", "")
    )
    problems = check_pipelines(project).problems
    assert problems and all("entry point 'train'" in p for p in problems)
    assert problems[0].startswith(".github/workflows/gitml-main.yml:") or problems[0].startswith(
        ".github/workflows/gitml-pr.yml:"
    )


def test_a_stage_outside_the_vocabulary_until_a_tag_uses_it(project: Path) -> None:
    init_pipelines(project, "gitlab", InitOptions(stage="qa"))
    problems = check_pipelines(project).problems
    assert problems and all("stage 'qa' is not in the registry's vocabulary" in p for p in problems)
    commit(project, "v1")
    tag(project, "cnn@v1.0.0", 1)
    tag(project, "cnn#qa#2", 2, "cnn@v1.0.0^{commit}")
    assert check_pipelines(project).problems == ()


def test_files_without_the_marker_are_not_checked(project: Path) -> None:
    (project / ".gitlab-ci.yml").write_text("job:\n  script: gitml run . -e nowhere\n")
    assert check_pipelines(project) == check_pipelines(project).__class__((), ())


def test_cli(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "ci", "check")
    assert code == 0 and "No pipeline file written by gitml" in out
    init_pipelines(project, "github", InitOptions(entry_point="nope"))
    code, out, err = run_cli(capsys, "ci", "check")
    assert code == 1 and "entry point 'nope'" in out
    assert err.startswith("Error: ") and err.count("\n") == 1

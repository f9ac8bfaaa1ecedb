"""`--env-manager conda`: the conda_env file checked, then built into a cached prefix.

No conda program can be installed on the test machines (no conda channel is reachable;
Debian ships no conda or micromamba; PyPI's conda-express downloads conda from conda-forge
on first use; py-rattler is a library, not a conda program), so CI sees the checks and the
one-line error. The real create-and-reuse test runs wherever conda, mamba or micromamba
is on PATH.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitml.projects.conda import CONDA_PROGRAMS
from gitml.tracking.client import GitMLClient
from tests.conftest import run_cli
from tests.projects.test_run import branch_tip, project

HAS_CONDA = any(shutil.which(p) for p in CONDA_PROGRAMS)
NO_CONDA = (
    "no conda program on PATH (conda, mamba or micromamba); none installs offline here: "
    "Debian has no package, PyPI's conda-express fetches conda from conda-forge"
)

MLPROJECT = """\
name: condaenv
conda_env: conda.yaml
entry_points:
  main:
    command: "python child.py"
"""
CHILD = """\
import os, sys
import gitml
gitml.log_params({"prefix": sys.prefix, "var": os.environ.get("GITML_CONDA_VAR", "")})
"""
CONDA_YAML = "name: t\nchannels: []\ndependencies: []\nvariables: {GITML_CONDA_VAR: set}\n"


@pytest.mark.skipif(HAS_CONDA, reason="a conda program is installed: the error cannot be seen")
def test_without_conda_the_error_is_one_line(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(repo, {"MLproject": MLPROJECT, "child.py": CHILD, "conda.yaml": CONDA_YAML})
    code, _, err = run_cli(capsys, "run", "--env-manager", "conda")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "conda is not installed on this machine (none of conda, mamba, micromamba is on PATH)" in err
    assert branch_tip(repo) == ""


@pytest.mark.parametrize(
    ("conda_yaml", "match"),
    [
        ("prefix: /elsewhere\ndependencies: []\n", "unknown key 'prefix'"),
        ("dependencies:\n- pip:\n  - --index-url=http://127.0.0.1:9/\n", "only '-r FILE' options"),
        ("dependencies:\n- pip:\n  - -e git+http://127.0.0.1:9/x\n", "only '-r FILE' options"),
        ("dependencies:\n- --override-channels\n", "neither a package spec"),
        ("dependencies:\n- {pip: [a], sh: [b]}\n", "neither a package spec"),
        ("channels: local\n", "channels must be a list"),
        ("a: &x [1]\nb: *x\n", "anchors and aliases"),
        ("dependencies: [\n", "YAML error"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_a_bad_conda_file_is_refused_before_conda_runs(
    repo: Path, capsys: pytest.CaptureFixture[str], conda_yaml: str, match: str
) -> None:
    project(repo, {"MLproject": MLPROJECT, "child.py": CHILD, "conda.yaml": conda_yaml})
    code, _, err = run_cli(capsys, "run", "--env-manager", "conda")
    assert code != 0 and match in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert branch_tip(repo) == "" and not (repo / ".git" / "gitml" / "envs").exists()


def test_a_conda_file_outside_the_project_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo.parent / "outside.yaml").write_text(CONDA_YAML)
    project(repo, {"MLproject": MLPROJECT.replace("conda.yaml", "../outside.yaml")})
    code, _, err = run_cli(capsys, "run", "--env-manager", "conda")
    assert code != 0 and "conda_env file ../outside.yaml not found in the project" in err


@pytest.mark.skipif(not HAS_CONDA, reason=NO_CONDA)
def test_a_conda_env_is_built_once_and_reused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, {"MLproject": MLPROJECT, "child.py": CHILD, "conda.yaml": CONDA_YAML})
    code, out, err = run_cli(capsys, "run", "--env-manager", "conda")
    assert code == 0, err
    envs = list((repo / ".git" / "gitml" / "envs").iterdir())
    assert len(envs) == 1 and (envs[0] / "conda-meta").is_dir()
    run = GitMLClient(repo).get_run(out.split()[-2])
    assert run.data.params["var"] == "set" and run.data.tags["mlflow.project.env"] == "conda"
    stamp = envs[0].stat().st_mtime_ns
    code, out, err = run_cli(capsys, "run", "--env-manager", "conda")
    assert code == 0, err
    assert list((repo / ".git" / "gitml" / "envs").iterdir()) == envs
    assert envs[0].stat().st_mtime_ns == stamp

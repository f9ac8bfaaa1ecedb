"""Environments: a virtualenv built from python_env.yaml, cached and reused; Ctrl-C marks KILLED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitml.tracking.client import GitMLClient
from tests.conftest import run_cli
from tests.projects.test_run import TRAIN, branch_tip, project

PY = f"{sys.version_info.major}.{sys.version_info.minor}"

MLPROJECT = """\
name: venv
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
    command: "python train.py --alpha {alpha}"
  where:
    command: "python -c 'import sys, gitml; gitml.log_param(\\"prefix\\", sys.prefix)'"
  sleepy:
    command: "python -c 'import time; time.sleep(120)'"
"""


def test_a_virtualenv_is_built_once_and_reused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(
        repo,
        {
            "MLproject": MLPROJECT,
            "train.py": TRAIN,
            "python_env.yaml": f"python: '{PY}'\ndependencies: []\n",
        },
    )
    code, out, err = run_cli(capsys, "run", "-e", "where", "--env-manager", "virtualenv")
    assert code == 0, err
    client = GitMLClient(repo)
    first = client.get_run(out.split()[-2])
    envs = list((repo / ".git" / "gitml" / "envs").iterdir())
    assert len(envs) == 1 and first.data.params["prefix"] == str(envs[0])
    assert first.data.tags["mlflow.project.env"] == "virtualenv"
    stamp = envs[0].stat().st_mtime_ns
    code, out, err = run_cli(capsys, "run", "--env-manager", "virtualenv", "-P", "alpha=0.25")
    assert code == 0, err
    assert client.get_run(out.split()[-2]).data.metrics["score"] == 0.5
    assert (
        list((repo / ".git" / "gitml" / "envs").iterdir()) == envs
        and envs[0].stat().st_mtime_ns == stamp
    )


def test_an_interpreter_that_is_not_installed_is_named(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(
        repo, {"MLproject": MLPROJECT, "train.py": TRAIN, "python_env.yaml": "python: '3.4.1'\n"}
    )
    code, _, err = run_cli(capsys, "run", "--env-manager", "virtualenv")
    assert code == 1 and "Python 3.4.1 is not installed" in err and "pyenv install 3.4.1" in err
    assert branch_tip(repo) == ""


def test_ctrl_c_ends_the_child_and_marks_the_run_killed(repo: Path) -> None:
    project(
        repo, {"MLproject": MLPROJECT, "train.py": TRAIN, "python_env.yaml": f"python: '{PY}'\n"}
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitml", "run", "-e", "sleepy"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while branch_tip(repo) == "" or "Running command" not in _peek(repo):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    runs = GitMLClient(repo).search_runs(["0"])
    assert [r.info.status for r in runs] == ["KILLED"]


def _peek(repo: Path) -> str:
    # the run exists on the branch once its params are committed, just before the child starts
    log = subprocess.run(
        ["git", "log", "--format=%s", "gitml"], cwd=repo, capture_output=True, text=True
    ).stdout
    return "Running command" if "artifacts" in log else ""


_ = os


def test_a_uv_environment_is_built_and_used(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    if not shutil.which("uv") and not (Path(sys.executable).parent / "uv").is_file():
        pytest.skip("uv is not installed (pip install uv)")
    project(
        repo, {"MLproject": MLPROJECT, "train.py": TRAIN, "python_env.yaml": f"python: '{PY}'\n"}
    )
    code, out, err = run_cli(capsys, "run", "-e", "where", "--env-manager", "uv")
    assert code == 0, err
    run = GitMLClient(repo).get_run(out.split()[-2])
    envs = list((repo / ".git" / "gitml" / "envs").iterdir())
    assert run.data.params["prefix"] == str(envs[0]) and run.data.tags["mlflow.project.env"] == "uv"

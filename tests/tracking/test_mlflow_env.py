"""MLflow's environment variables, as CI pipelines and `mlflow run` set them, honoured beside gitml's.

The scripts here are MLflow scripts with one line changed (`import gitml as mlflow`), run as
real subprocesses with the variables an Argo workflow or a GitLab job sets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gitml as mlflow
from gitml.config import env_tracking_uri, resolve_config
from tests.conftest import make_repo

ROOT = Path(__file__).resolve().parents[2]

# The seed's training step, as MLflow's docs write it: no tracking URI, no experiment in code.
SCRIPT = """
import json, sys
import gitml as mlflow

with mlflow.start_run() as run:
    mlflow.log_param("lr", 0.01)
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
second = None
if "--twice" in sys.argv:
    with mlflow.start_run() as again:
        mlflow.log_metric("again", 1)
    second = again.info.run_id
print(json.dumps({"run_id": run.info.run_id, "experiment_id": run.info.experiment_id,
                  "uri": mlflow.get_tracking_uri(), "second": second}))
"""


def _run_script(tmp_path: Path, env: dict[str, str], *args: str, cwd: Path | None = None) -> dict[str, str]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    full = {k: v for k, v in os.environ.items() if not k.startswith(("GITML_", "MLFLOW_"))}
    full.update(PYTHONPATH=str(ROOT), GITML_FLUSH_INTERVAL="5", **env)
    proc = subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd or tmp_path, env=full, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["stderr"] = proc.stderr
    return out


def test_mlflow_tracking_uri_and_experiment_name(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    elsewhere = tmp_path / "job"  # a CI job's working directory, outside the repository
    elsewhere.mkdir()
    got = _run_script(
        elsewhere,
        {"MLFLOW_TRACKING_URI": f"file://{repo}", "MLFLOW_EXPERIMENT_NAME": "image-classifier"},
        cwd=elsewhere,
    )
    assert Path(got["uri"]) == repo
    mlflow.set_tracking_uri(str(repo))
    run = mlflow.get_run(got["run_id"])
    assert run.info.status == "FINISHED"
    assert mlflow.get_experiment(run.info.experiment_id).name == "image-classifier"
    assert run.data.params == {"lr": "0.01"}


def test_mlflow_tracking_uri_as_a_plain_path(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    got = _run_script(tmp_path, {"MLFLOW_TRACKING_URI": str(repo / "mlruns")})  # MLflow's ./mlruns habit
    assert Path(got["uri"]) == repo


def test_mlflow_experiment_id(repo: Path, tmp_path: Path) -> None:
    exp_id = mlflow.create_experiment("made-before")
    mlflow.flush()
    got = _run_script(tmp_path, {"MLFLOW_TRACKING_URI": str(repo), "MLFLOW_EXPERIMENT_ID": exp_id})
    assert got["experiment_id"] == exp_id


def test_mlflow_run_id_resumes_that_run(repo: Path, tmp_path: Path) -> None:
    # What `mlflow run` and the seed's pipeline do: create the run, hand its id to the step.
    mlflow.set_experiment("pipeline")
    with mlflow.start_run(run_name="train-step") as parent_run:
        mlflow.log_param("stage", "train")
    run_id = parent_run.info.run_id
    got = _run_script(tmp_path, {"MLFLOW_TRACKING_URI": str(repo), "MLFLOW_RUN_ID": run_id}, "--twice")
    assert got["run_id"] == run_id
    assert got["second"] and got["second"] != run_id  # MLflow joins the variable's run once
    from gitml.tracking import tracker

    tracker.reset_all()
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "train-step"
    assert run.data.params == {"stage": "train", "lr": "0.01"}
    assert run.data.metrics["loss"] == pytest.approx(1 / 3)
    assert "again" not in run.data.metrics
    assert mlflow.get_run(got["second"]).data.metrics["again"] == 1


def test_gitml_names_win_over_mlflow_names(tmp_path: Path) -> None:
    ours, theirs = make_repo(tmp_path / "ours"), make_repo(tmp_path / "theirs")
    got = _run_script(
        tmp_path,
        {
            "GITML_TRACKING_URI": str(ours),
            "MLFLOW_TRACKING_URI": str(theirs),
            "GITML_EXPERIMENT_NAME": "gitml-name",
            "MLFLOW_EXPERIMENT_NAME": "mlflow-name",
        },
    )
    assert Path(got["uri"]) == ours
    mlflow.set_tracking_uri(str(ours))
    assert mlflow.get_experiment(got["experiment_id"]).name == "gitml-name"
    assert mlflow.get_experiment_by_name("mlflow-name") is None


def test_a_server_uri_is_reported_and_the_repository_used(repo: Path, tmp_path: Path) -> None:
    got = _run_script(tmp_path, {"MLFLOW_TRACKING_URI": "http://mlflow-server:5000"}, cwd=repo)
    assert Path(got["uri"]) == repo
    assert "names a server" in got["stderr"]


def test_name_and_id_that_disagree_are_refused(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitml.tracking import tracker

    other = mlflow.create_experiment("other")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "wanted")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", other)
    tracker.reset_all()
    with pytest.raises(mlflow.MlflowException, match="MLFLOW_EXPERIMENT_NAME / MLFLOW_EXPERIMENT_ID"):
        mlflow.start_run()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"MLFLOW_EXPERIMENT_NAME": "m"}, ("m", None, None)),
        ({"MLFLOW_EXPERIMENT_ID": "7", "MLFLOW_RUN_ID": "a" * 32}, (None, "7", "a" * 32)),
        ({"GITML_EXPERIMENT_NAME": "g", "MLFLOW_EXPERIMENT_NAME": "m"}, ("g", None, None)),
        # gitml's pair replaces MLflow's whole: no name/id mismatch across the two spellings
        ({"GITML_EXPERIMENT_ID": "3", "MLFLOW_EXPERIMENT_NAME": "m"}, (None, "3", None)),
        ({"GITML_RUN_ID": "b" * 32, "MLFLOW_RUN_ID": "a" * 32}, (None, None, "b" * 32)),
        ({"MLFLOW_EXPERIMENT_NAME": "", "MLFLOW_RUN_ID": ""}, (None, None, None)),  # empty is unset
    ],
)
def test_resolution_table(environ: dict[str, str], expected: tuple[str | None, ...]) -> None:
    cfg = resolve_config(None, environ)
    assert (cfg.experiment_name, cfg.experiment_id, cfg.run_id) == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"MLFLOW_TRACKING_URI": "file:///x"}, "file:///x"),
        ({"GITML_TRACKING_URI": "/g", "MLFLOW_TRACKING_URI": "/m"}, "/g"),
        ({"GITML_TRACKING_URI": "", "MLFLOW_TRACKING_URI": "/m"}, "/m"),
    ],
)
def test_tracking_uri_resolution(environ: dict[str, str], expected: str | None) -> None:
    assert env_tracking_uri(environ) == expected


def test_a_uri_outside_any_repository_names_the_variable(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("import gitml as mlflow\nmlflow.start_run()\n")
    nowhere = tmp_path / "not-a-repo"
    nowhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITML_", "MLFLOW_"))}
    env.update(PYTHONPATH=str(ROOT), MLFLOW_TRACKING_URI=nowhere.as_uri(), GIT_CEILING_DIRECTORIES=str(tmp_path))
    proc = subprocess.run([sys.executable, str(script)], cwd=nowhere, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "not inside a Git repository" in proc.stderr and "MLFLOW_TRACKING_URI" in proc.stderr


def test_set_in_the_script_before_the_first_call(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = make_repo(tmp_path / "other")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(other))  # as `os.environ[...] = ...` at a script's top
    with mlflow.start_run():
        mlflow.log_metric("x", 1)
    assert mlflow.get_tracking_uri() == str(other)
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "gitml"], cwd=other, capture_output=True).returncode == 0

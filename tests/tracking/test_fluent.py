"""The fluent API, as an MLflow script uses it (`import gitml as mlflow`)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

import gitml as mlflow
from gitml.exceptions import GitMLError, InvalidParameterValue, MlflowException
from tests.conftest import git


def test_mlflow_script_runs_unchanged(repo: Path) -> None:
    mlflow.set_experiment("mnist")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"epochs": 3, "optimizer": "adam"})
        for epoch in range(3):
            mlflow.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
            mlflow.log_metrics({"acc": 0.5 + epoch / 10, "val_acc": 0.4 + epoch / 10}, step=epoch)
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"a": 1, "b": "two"})
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "baseline"
    assert got.info.end_time >= got.info.start_time
    assert got.data.params == {"lr": "0.01", "epochs": "3", "optimizer": "adam"}
    assert got.data.metrics["loss"] == pytest.approx(1 / 3)
    assert got.data.metrics["acc"] == pytest.approx(0.7)
    assert got.data.tags["team"] == "vision" and got.data.tags["a"] == "1"
    assert mlflow.get_experiment_by_name("mnist").experiment_id == got.info.experiment_id
    assert mlflow.active_run() is None


def test_run_records_its_source(repo: Path) -> None:
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    with mlflow.start_run() as run:
        pass
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["gitml.source.dirty"] == "false"
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.runName"]  # a generated name when none is given
    (repo / "train.py").write_text("changed\n")
    with mlflow.start_run() as run2:
        pass
    assert mlflow.get_run(run2.info.run_id).data.tags["gitml.source.dirty"] == "true"


def test_working_tree_index_and_head_untouched(repo: Path) -> None:
    (repo / "untracked.txt").write_text("keep me\n")
    before = (git("status", "--porcelain", cwd=repo), git("rev-parse", "HEAD", cwd=repo), git("symbolic-ref", "HEAD", cwd=repo))
    with mlflow.start_run():
        mlflow.log_metric("x", 1)
    after = (git("status", "--porcelain", cwd=repo), git("rev-parse", "HEAD", cwd=repo), git("symbolic-ref", "HEAD", cwd=repo))
    assert before == after
    # The branch is an orphan, browsable with plain git.
    assert git("rev-list", "--count", "gitml", cwd=repo).strip() != "0"
    proc = subprocess.run(["git", "merge-base", "main", "gitml"], cwd=repo, capture_output=True)
    assert proc.returncode == 1  # no common history
    assert b"format: 1" in subprocess.run(["git", "show", "gitml:gitml.yaml"], cwd=repo, capture_output=True).stdout
    assert subprocess.run(["git", "fsck", "--no-progress"], cwd=repo, capture_output=True).returncode == 0


def test_exception_in_with_block_fails_the_run(repo: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        with mlflow.start_run() as run:
            mlflow.log_metric("before", 1.0)
            1 / 0  # noqa: B018
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FAILED"
    assert got.data.metrics["before"] == 1.0


def test_nested_runs_and_active_run_errors(repo: Path) -> None:
    with mlflow.start_run() as parent:
        with pytest.raises(MlflowException, match="already active"):
            mlflow.start_run()
        with mlflow.start_run(nested=True) as child:
            assert mlflow.active_run().info.run_id == child.info.run_id
        assert mlflow.active_run().info.run_id == parent.info.run_id
    assert mlflow.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_log_without_start_run_starts_one(repo: Path) -> None:
    mlflow.log_metric("m", 3.0)
    run = mlflow.active_run()
    assert run is not None
    mlflow.end_run()
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"


def test_resume_run_by_id(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0, step=0)
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_metric("m", 2.0, step=1)
        assert mlflow.get_run(run.info.run_id).info.status == "RUNNING"
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert [m.value for m in mlflow.MlflowClient().get_metric_history(run.info.run_id, "m")] == [1.0, 2.0]


def test_params_are_immutable(repo: Path) -> None:
    with mlflow.start_run():
        mlflow.log_param("lr", 0.1)
        mlflow.log_param("lr", 0.1)  # the same value again is a no-op
        with pytest.raises(InvalidParameterValue) as e:
            mlflow.log_param("lr", 0.2)
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_latest_metric_is_highest_step_then_timestamp(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 5.0, step=10, timestamp=1000)
        mlflow.log_metric("m", 1.0, step=2, timestamp=5000)  # later write, lower step
        mlflow.log_metric("n", 1.0, step=1, timestamp=1000)
        mlflow.log_metric("n", 2.0, step=1, timestamp=2000)
    got = mlflow.get_run(run.info.run_id)
    assert got.data.metrics["m"] == 5.0
    assert got.data.metrics["n"] == 2.0


def test_nan_and_infinities_round_trip(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("nan", float("nan"))
        mlflow.log_metric("inf", float("inf"))
        mlflow.log_metric("ninf", float("-inf"))
    m = mlflow.get_run(run.info.run_id).data.metrics
    assert math.isnan(m["nan"]) and m["inf"] == math.inf and m["ninf"] == -math.inf
    hist = mlflow.MlflowClient().get_metric_history(run.info.run_id, "nan")
    assert len(hist) == 1 and math.isnan(hist[0].value)
    # search answers from the index, which must keep them too
    found = mlflow.search_runs(output_format="list")
    assert math.isnan(found[0].data.metrics["nan"]) and found[0].data.metrics["inf"] == math.inf


def test_environment_variables(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitml.tracking import tracker

    monkeypatch.setenv("GITML_EXPERIMENT_NAME", "from-env")
    monkeypatch.setenv("GITML_RUN_NAME", "named-by-env")
    tracker.reset_all()
    with mlflow.start_run() as run:
        pass
    got = mlflow.get_run(run.info.run_id)
    assert mlflow.get_experiment(got.info.experiment_id).name == "from-env"
    assert got.info.run_name == "named-by-env"


def test_tracking_uri_points_at_another_repo(repo: Path, tmp_path: Path) -> None:
    from tests.conftest import make_repo

    other = make_repo(tmp_path / "other")
    mlflow.set_tracking_uri(str(other))
    try:
        assert mlflow.get_tracking_uri() == str(other)
        with mlflow.start_run():
            mlflow.log_metric("x", 1)
        assert subprocess.run(["git", "rev-parse", "--verify", "gitml"], cwd=other, capture_output=True).returncode == 0
        assert subprocess.run(["git", "rev-parse", "--verify", "gitml"], cwd=repo, capture_output=True).returncode != 0
    finally:
        mlflow.set_tracking_uri(None)


def test_search_runs_returns_a_dataframe(repo: Path) -> None:
    pd = pytest.importorskip("pandas")
    with mlflow.start_run():
        mlflow.log_metric("acc", 0.9)
        mlflow.log_param("lr", "0.1")
    df = mlflow.search_runs()
    assert isinstance(df, pd.DataFrame)
    assert list(df["metrics.acc"]) == [0.9] and list(df["params.lr"]) == ["0.1"]
    assert {"run_id", "experiment_id", "status", "start_time"} <= set(df.columns)


def test_delete_tag_and_run(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.set_tag("t", "v")
        mlflow.delete_tag("t")
        with pytest.raises(GitMLError):
            mlflow.delete_tag("missing")
    assert "t" not in mlflow.get_run(run.info.run_id).data.tags
    mlflow.delete_run(run.info.run_id)
    assert mlflow.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert mlflow.search_runs(output_format="list") == []


def test_runs_are_listed_under_their_source_commit(repo: Path) -> None:
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    with mlflow.start_run() as a:
        pass
    with mlflow.start_run() as b:
        pass
    shown = subprocess.run(
        ["git", "show", f"gitml:commits/{head[:2]}/{head}.json"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    import json

    assert set(json.loads(shown)) == {a.info.run_id, b.info.run_id}


@pytest.mark.parametrize("uri", ["http://localhost:5000", "databricks", "sqlite:///mlflow.db", "file:./mlruns", "./mlruns", "file://{repo}/mlruns"])
def test_mlflow_style_tracking_uris_still_run(repo: Path, uri: str, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.WARNING, logger="gitml")
    mlflow.set_tracking_uri(uri.format(repo=repo))
    mlflow.autolog()  # accepted (and said to do nothing) so the script goes on
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    assert mlflow.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    assert mlflow.get_tracking_uri() == str(repo)
    server = not uri.startswith(("file", "."))
    assert ("names a server or database" in caplog.text) == server
    assert "autolog() is not supported" in caplog.text
    mlflow.set_tracking_uri(None)


def test_unknown_uri_scheme_is_a_clear_error(repo: Path) -> None:
    with pytest.raises(InvalidParameterValue, match="not a local Git repository"):
        mlflow.set_tracking_uri("s3://bucket/path")

"""MLflow's calling habits: big batches, `synchronous=False`, as MLflow scripts write them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import gitml as mlflow
from gitml.entities import Metric, Param, RunTag
from gitml.exceptions import InvalidParameterValue
from tests.conftest import git


def _committed_metric(repo: Path, run_id: str, key: str) -> bool:
    """Whether the metadata branch itself (not this process's buffer) holds the metric."""
    tree = git("ls-tree", "-r", "--name-only", "gitml", cwd=repo)
    paths = [p for p in tree.splitlines() if run_id in p]
    blobs = "".join(git("show", f"gitml:{p}", cwd=repo) for p in paths)
    return key in blobs


def test_log_batch_past_mlflow_limits_is_split_not_refused(repo: Path) -> None:
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        now = int(time.time() * 1000)
        metrics = [Metric(f"m{i}", float(i), now, 0) for i in range(2500)]  # MLflow's limit: 1000
        params = [Param(f"p{i}", str(i)) for i in range(250)]  # 100
        tags = [RunTag(f"t{i}", str(i)) for i in range(250)]  # 100
        assert client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags) is None
    got = mlflow.get_run(run.info.run_id)
    assert len([k for k in got.data.metrics if k.startswith("m")]) == 2500
    assert got.data.metrics["m2499"] == 2499.0
    assert len(got.data.params) == 250 and got.data.params["p249"] == "249"
    assert got.data.tags["t249"] == "249"


def test_a_bad_item_leaves_the_whole_batch_unwritten(repo: Path) -> None:
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_param("lr", "0.1")
        good = [Metric(f"m{i}", float(i), 0, 0) for i in range(1500)]
        for bad in (
            {"metrics": [*good, Metric("bad key!", 1.0, 0, 0)]},
            {"metrics": good, "params": [Param("lr", "0.2")]},  # params are immutable
            {"metrics": good, "params": [Param("a", "1"), Param("a", "2")]},
            {"metrics": good, "tags": [RunTag("t", "x" * 9000)]},
        ):
            with pytest.raises(InvalidParameterValue):
                client.log_batch(run.info.run_id, **bad)
    got = mlflow.get_run(run.info.run_id)
    assert got.data.metrics == {} and got.data.params == {"lr": "0.1"} and "t" not in got.data.tags


def test_synchronous_false_returns_operations_to_wait_on(repo: Path) -> None:
    with mlflow.start_run() as run:
        ops = [
            mlflow.log_metric("loss", 0.5, step=1, synchronous=False),
            mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=1, synchronous=False),
            mlflow.log_param("lr", 0.01, synchronous=False),
            mlflow.log_params({"epochs": 3}, synchronous=False),
            mlflow.set_tag("team", "vision", synchronous=False),
            mlflow.set_tags({"stage": "train"}, synchronous=False),
        ]
        client = mlflow.MlflowClient()
        ops.append(client.log_metric(run.info.run_id, "client_metric", 1.0, synchronous=False))
        ops.append(client.log_param(run.info.run_id, "client_param", 1, synchronous=False))
        ops.append(client.set_tag(run.info.run_id, "client_tag", 1, synchronous=False))
        ops.append(client.log_batch(run.info.run_id, metrics=[Metric("b", 1.0, 0, 0)], synchronous=False))
        for op in ops:
            assert hasattr(op, "wait"), op
        ops[-1].wait()  # MLflow: the data has reached the store; here, it is committed
        assert _committed_metric(repo, run.info.run_id, "client_metric")
        for op in ops:
            op.wait()
    got = mlflow.get_run(run.info.run_id)
    assert got.data.metrics == {"loss": 0.5, "acc": 0.9, "f1": 0.8, "client_metric": 1.0, "b": 1.0}
    assert got.data.params == {"lr": "0.01", "epochs": "3", "client_param": "1"}
    assert got.data.tags["team"] == "vision" and got.data.tags["client_tag"] == "1"


def test_synchronous_true_behaves_as_before(repo: Path) -> None:
    with mlflow.start_run() as run:
        assert mlflow.log_metric("loss", 0.5, synchronous=True) is None
        assert mlflow.log_param("lr", 0.01, synchronous=True) == 0.01
        assert mlflow.log_param("epochs", 3) == 3
        assert mlflow.set_tag("t", 1, synchronous=True) is None
        assert mlflow.MlflowClient().log_param(run.info.run_id, "x", "y") == "y"


def test_combined_operations(repo: Path) -> None:
    from gitml.tracking.operations import get_combined_run_operations

    with mlflow.start_run():
        ops = [mlflow.log_metric("m", float(i), step=i, synchronous=False) for i in range(5)]
        combined = get_combined_run_operations([*ops, None])
        combined.wait()


def test_async_logging_by_environment(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitml.tracking import tracker

    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "true")
    tracker.reset_all()
    with mlflow.start_run():
        op = mlflow.log_metric("m", 1.0)
        assert op is not None and hasattr(op, "wait")
        assert mlflow.log_metric("m", 2.0, synchronous=True) is None
        op.wait()

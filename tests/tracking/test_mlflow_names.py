"""MLflow's smaller fluent names that existing scripts call: same behaviour under `import gitml as mlflow`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import gitml as mlflow
from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist


def test_last_active_run_is_the_run_ended_last(repo: Path) -> None:
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child", nested=True) as child:
            assert mlflow.last_active_run().info.run_id == child.info.run_id
        assert mlflow.last_active_run().info.run_id == parent.info.run_id  # active again
    last = mlflow.last_active_run()
    assert last.info.run_id == parent.info.run_id and last.info.status == "FINISHED"
    assert mlflow.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    assert mlflow.get_parent_run(parent.info.run_id) is None


def test_log_table_appends_and_load_table_gathers_runs(repo: Path) -> None:
    with mlflow.start_run() as a:
        mlflow.log_table(pd.DataFrame({"x": [1, 2], "y": ["p", "q"]}), "eval/table.json")
        mlflow.log_table({"x": [3], "y": ["r"]}, "eval/table.json")  # appended
    with mlflow.start_run() as b:
        mlflow.log_table({"x": [9], "y": ["z"]}, "eval/table.json")
    with mlflow.start_run():
        mlflow.log_metric("no_table", 1)
    one = mlflow.load_table("eval/table.json", run_ids=[a.info.run_id])
    assert one.to_dict(orient="list") == {"x": [1, 2, 3], "y": ["p", "q", "r"]}
    both = mlflow.load_table("eval/table.json", extra_columns=["run_id"])
    assert sorted(both["x"]) == [1, 2, 3, 9]
    assert set(both["run_id"]) == {a.info.run_id, b.info.run_id}
    # MLflow's file layout: split orientation, no index
    text = mlflow.artifacts.load_text(f"runs:/{b.info.run_id}/eval/table.json")
    assert text == '{"columns":["x","y"],"data":[[9,"z"]]}'
    tag = mlflow.get_run(a.info.run_id).data.tags["mlflow.loggedArtifacts"]
    assert tag == '[{"path": "eval/table.json", "type": "table"}]'
    with pytest.raises(InvalidParameterValue, match=r"\.json"):
        mlflow.log_table({"x": [1]}, "table.csv", run_id=a.info.run_id)
    with pytest.raises(InvalidParameterValue, match="DataFrame"):
        mlflow.log_table([1, 2], "t.json", run_id=a.info.run_id)
    with pytest.raises(ResourceDoesNotExist, match="no run has"):
        mlflow.load_table("missing.json")
    # the bad calls lost nothing
    assert len(mlflow.load_table("eval/table.json", run_ids=[a.info.run_id])) == 3


def test_restore_tags_and_uris(repo: Path) -> None:
    mlflow.set_experiment("names")
    mlflow.set_experiment_tag("owner", "me")
    mlflow.delete_experiment_tag("owner")
    assert "owner" not in mlflow.get_experiment_by_name("names").tags
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
    mlflow.delete_run(run.info.run_id)
    assert mlflow.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    mlflow.restore_run(run.info.run_id)
    assert mlflow.get_run(run.info.run_id).info.lifecycle_stage == "active"
    exp = mlflow.create_experiment("gone")
    mlflow.delete_experiment(exp)
    mlflow.restore_experiment(exp)
    assert mlflow.get_experiment(exp).lifecycle_stage == "active"
    mlflow.flush_async_logging()
    mlflow.flush_artifact_async_logging()
    mlflow.set_registry_uri("databricks-uc")  # accepted: the registry is this repo's tags
    assert Path(mlflow.get_registry_uri()) == Path(mlflow.get_tracking_uri())
    assert mlflow.VERSION == mlflow.__version__


def test_registry_searches_in_fluent_form(repo: Path) -> None:
    from tests.models.pyfuncs import AddN

    with mlflow.start_run():
        mlflow.pyfunc.log_model("model", python_model=AddN(1), registered_model_name="adder")
        mlflow.pyfunc.log_model("model2", python_model=AddN(2), registered_model_name="adder")
    versions = mlflow.search_model_versions(filter_string="name = 'adder'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert [m.name for m in mlflow.search_registered_models()] == ["adder"]
    mlflow.set_model_version_tag("adder", "2", "validated", "yes")
    v2 = mlflow.MlflowClient().get_model_version("adder", "2")
    assert v2.tags == {"validated": "yes"}

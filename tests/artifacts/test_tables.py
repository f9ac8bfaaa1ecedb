"""`log_table` / `load_table` as MLflow scripts call them: JSON tables, and Parquet ones when pyarrow is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

import gitml as mlflow
from gitml.exceptions import InvalidParameterValue

pd = pytest.importorskip("pandas", reason="pandas is needed for tables")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is needed for Parquet tables")

TABLE = {
    "inputs": ["What is MLflow?", "What is Databricks?"],
    "outputs": ["MLflow is ...", "Databricks is ..."],
    "toxicity": [0.0, 0.5],
}


def test_parquet_round_trip_keeps_types(repo: Path) -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1, 2], dtype="int64"),
            "x": [0.5, float("nan")],
            "ok": [True, False],
            "when": pd.to_datetime(["2026-01-01", "2026-06-30"]),
            "text": ["a", None],
        }
    )
    with mlflow.start_run() as run:
        mlflow.log_table(data=frame, artifact_file="eval/results.parquet")
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{run.info.run_id}/eval/results.parquet")
    assert pq.read_table(local).num_rows == 2  # a real Parquet file
    back = mlflow.load_table("eval/results.parquet", run_ids=[run.info.run_id])
    pd.testing.assert_frame_equal(back, frame)


def test_parquet_tables_append_and_load_across_runs(repo: Path) -> None:
    ids = []
    for _ in range(2):
        with mlflow.start_run() as run:
            mlflow.log_table(data=TABLE, artifact_file="qabot_eval_results.parquet")
            mlflow.log_table(data=TABLE, artifact_file="qabot_eval_results.parquet")  # appended
        ids.append(run.info.run_id)
    loaded = mlflow.load_table("qabot_eval_results.parquet", extra_columns=["run_id"])
    assert len(loaded) == 8 and sorted(set(loaded["run_id"])) == sorted(ids)
    assert list(loaded.columns) == ["inputs", "outputs", "toxicity", "run_id"]
    assert loaded["toxicity"].tolist() == [0.0, 0.5] * 4


def test_json_tables_stay_json(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_table(data=TABLE, artifact_file="qabot_eval_results.json")
    text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/qabot_eval_results.json")
    assert text.startswith('{"columns":["inputs","outputs","toxicity"]')
    assert len(mlflow.load_table("qabot_eval_results.json", run_ids=[run.info.run_id])) == 2


def test_other_extensions_are_refused(repo: Path) -> None:
    with mlflow.start_run():
        with pytest.raises(InvalidParameterValue, match=r"\.json or \.parquet"):
            mlflow.log_table(data=TABLE, artifact_file="results.csv")


def test_a_file_that_is_not_parquet_is_refused_whole(repo: Path, tmp_path: Path) -> None:
    # a teammate's run (or a hostile remote) holds junk under a .parquet name
    junk = tmp_path / "results.parquet"
    junk.write_bytes(b"PAR1 not really parquet PAR1")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(junk))
        with pytest.raises(InvalidParameterValue, match="is not a table"):
            mlflow.log_table(data=TABLE, artifact_file="results.parquet")  # append would read it
    with pytest.raises(InvalidParameterValue, match="results.parquet"):
        mlflow.load_table("results.parquet", run_ids=[run.info.run_id])
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{run.info.run_id}/results.parquet")
    assert Path(local).read_bytes() == junk.read_bytes()  # what was there stays intact


def test_client_log_table_and_load_table(repo: Path) -> None:
    # MLflow's documented client example, word for word but for the import
    df = pd.DataFrame.from_dict(TABLE)
    client = mlflow.MlflowClient()
    run = client.create_run(experiment_id="0")
    client.log_table(run.info.run_id, data=df, artifact_file="qabot_eval_results.json")
    client.log_table(run.info.run_id, data=df, artifact_file="qabot_eval_results.parquet")
    loaded_table = client.load_table(
        experiment_id="0",
        artifact_file="qabot_eval_results.json",
        run_ids=[run.info.run_id],
        extra_columns=["run_id"],
    )
    assert loaded_table["run_id"].tolist() == [run.info.run_id] * 2
    every = client.load_table("0", "qabot_eval_results.parquet")  # found by the run's tag
    pd.testing.assert_frame_equal(every, df)

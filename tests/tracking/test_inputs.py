"""Dataset inputs (`mlflow.data` + `log_input`): an MLflow 2.4+ script, read back by get_run,
search_runs and `gitml runs show`; two clones merging; a hostile `inputs.jsonl`."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

import gitml as mlflow
from gitml import constants as C
from gitml.entities import Dataset, DatasetInput, InputTag
from gitml.exceptions import InvalidParameterValue
from gitml.store.repo import GitRepo
from gitml.store.sync import pull, push
from gitml.tracking.branch_rules import BRANCH_RULES
from gitml.tracking.inputs import MAX_INPUTS
from tests.conftest import git, run_cli

pd = pytest.importorskip("pandas", reason="pandas is needed for mlflow.data.from_pandas")
np = pytest.importorskip("numpy", reason="numpy is needed for mlflow.data.from_numpy")


def _frame() -> object:
    return pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0], "n": [1, 2, 3, 4], "label": ["a", "b", "a", "b"]}
    )


def _inputs_file(repo: Path, run_id: str) -> str:
    return git("show", f"gitml:{C.run_dir(run_id)}/{C.RUN_INPUTS}", cwd=repo)


def test_mlflow_script_logs_datasets_and_reads_them_back(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = _frame()
    train = mlflow.data.from_pandas(df, source="data/train.csv", targets="label", name="train")
    feats = mlflow.data.from_numpy(
        np.arange(12.0).reshape(4, 3),
        targets=np.array([0, 1, 0, 1]),
        source="https://example.com/x.npy",
        name="arrays",
    )
    mlflow.set_experiment("datasets")
    with mlflow.start_run() as run:
        mlflow.log_input(train, context="training", tags={"split": "80%"})
        mlflow.log_input(train, context="training")  # the same dataset and context: once
        mlflow.log_input(train, context="eval")  # another context: a second input
        mlflow.log_input(feats)
        mlflow.log_metric("acc", 0.9)
    got = mlflow.get_run(run.info.run_id)
    inputs = got.inputs.dataset_inputs
    assert [
        (i.dataset.name, {t.key: t.value for t in i.tags}.get(C.TAG_DATASET_CONTEXT))
        for i in inputs
    ] == [("train", "training"), ("train", "eval"), ("arrays", None)]
    ds = inputs[0].dataset
    assert (
        len(ds.digest) == 8
        and ds.digest == mlflow.data.from_pandas(_frame(), targets="label").digest
    )
    assert ds.digest != mlflow.data.from_pandas(_frame().head(3)).digest  # other data, other digest
    assert (ds.source_type, json.loads(ds.source)) == ("local", {"uri": "data/train.csv"})
    assert json.loads(ds.schema)["mlflow_colspec"][0] == {
        "type": "double",
        "name": "x",
        "required": True,
    }
    assert json.loads(ds.profile) == {"num_rows": 4, "num_elements": 12}
    assert InputTag("split", "80%") in inputs[0].tags
    arrays = inputs[2].dataset
    assert arrays.source_type == "http" and json.loads(arrays.profile)["features_shape"] == [4, 3]
    assert "mlflow_tensorspec" in json.loads(arrays.schema)
    # search_runs (the query index) fills inputs too
    [found] = mlflow.search_runs(experiment_names=["datasets"], output_format="list")
    assert found.inputs.dataset_inputs == inputs
    assert got.to_dictionary()["inputs"]["dataset_inputs"][0]["dataset"]["name"] == "train"
    # the file on the branch: one line per input, each a JSON object
    assert len(_inputs_file(repo, run.info.run_id).splitlines()) == 3
    code, out, _ = run_cli(capsys, "runs", "show", run.info.run_id)
    assert code == 0 and "Inputs:" in out and f"train ({ds.digest})  context=training" in out


def test_mlflow_import_paths_of_datasets() -> None:
    import gitml.data
    from gitml.data.dataset import Dataset as Base
    from gitml.data.numpy_dataset import NumpyDataset
    from gitml.data.pandas_dataset import PandasDataset

    assert isinstance(gitml.data.from_pandas(_frame()), PandasDataset)
    assert isinstance(gitml.data.from_numpy(np.ones(2)), NumpyDataset)
    assert issubclass(PandasDataset, Base) and gitml.data.from_numpy(np.ones(2)).name == "dataset"
    with pytest.raises(InvalidParameterValue):
        gitml.data.from_pandas(_frame(), targets="missing")


def test_client_log_inputs_takes_dataset_input_entities(repo: Path) -> None:
    client = mlflow.MlflowClient()
    run = client.create_run(client.create_experiment("e"))
    ds = Dataset("table", "abc12345", "local", json.dumps({"uri": "t.parquet"}), None, None)
    client.log_inputs(
        run.info.run_id, datasets=[DatasetInput(ds, (InputTag(C.TAG_DATASET_CONTEXT, "eval"),))]
    )
    [got] = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert got.dataset == ds and got.tags == (InputTag(C.TAG_DATASET_CONTEXT, "eval"),)
    with pytest.raises(InvalidParameterValue):
        client.log_inputs(
            run.info.run_id, datasets=[Dataset("x", "d" * 40, "local", "{}")]
        )  # digest too long
    with pytest.raises(InvalidParameterValue):
        client.log_inputs(run.info.run_id, datasets=["not a dataset"])
    assert len(client.get_run(run.info.run_id).inputs.dataset_inputs) == 1  # nothing half-written
    assert client.get_run(client.create_run("0").info.run_id).inputs.dataset_inputs == []


def test_two_clones_logging_inputs_to_one_run_merge(clones: tuple[Path, Path, Path]) -> None:
    _, a, b = clones
    ca = mlflow.MlflowClient(tracking_uri=str(a))
    run_id = ca.create_run("0").info.run_id
    ca.log_inputs(run_id, [mlflow.data.from_pandas(_frame(), name="shared")])
    ra, rb = GitRepo(a, "gitml"), GitRepo(b, "gitml")
    push(ra, rules=BRANCH_RULES)
    pull(rb, rules=BRANCH_RULES)
    cb = mlflow.MlflowClient(tracking_uri=str(b))
    # each clone adds its own input to the same run; both also re-log the shared one
    ca.log_inputs(
        run_id, [DatasetInput(mlflow.data.from_numpy(np.ones(3), name="from-a").to_entity())]
    )
    cb.log_inputs(
        run_id, [DatasetInput(mlflow.data.from_numpy(np.zeros(3), name="from-b").to_entity())]
    )
    cb.log_inputs(run_id, [mlflow.data.from_pandas(_frame(), name="shared")])
    push(ra, rules=BRANCH_RULES)
    result = push(rb, rules=BRANCH_RULES)  # fetches a's, merges (union of lines), pushes
    assert result is not None
    pull(ra, rules=BRANCH_RULES)
    for c in (ca, cb):
        names = sorted(i.dataset.name for i in c.get_run(run_id).inputs.dataset_inputs)
        assert names == ["from-a", "from-b", "shared"]
    ra.close()
    rb.close()


def test_hostile_inputs_file_is_bounded_and_bad_lines_skipped(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_pandas(_frame(), name="good"), context="training")
    run_id = run.info.run_id
    good = _inputs_file(repo, run_id).splitlines()[0]
    obj = json.loads(good)
    bad = [
        "not json",
        "[1, 2]",
        json.dumps({**obj, "name": 5}),
        json.dumps({**obj, "name": "x" * 600}),
        json.dumps({**obj, "tags": {"k": ["nested"]}}),
        json.dumps({**obj, "extra": 1}),
        json.dumps({**obj, "timestamp": 2**70}),
        json.dumps({**obj, "profile": "p" * 20_000}),
        "[" * 100_000 + "]" * 100_000,
        "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
    ]
    many = [json.dumps({**obj, "name": f"n{i}"}) for i in range(MAX_INPUTS + 50)]
    _replace_inputs(repo, run_id, "\n".join([good, *bad, *many]) + "\n")
    with caplog.at_level(logging.WARNING):
        inputs = mlflow.get_run(run_id).inputs.dataset_inputs
        found = mlflow.search_runs(output_format="list")
    assert inputs[0].dataset.name == "good" and len(inputs) == MAX_INPUTS
    assert found[0].inputs.dataset_inputs == inputs
    assert "skipped" in caplog.text and f"more than {MAX_INPUTS} inputs" in caplog.text
    # logging more still works on top of the hostile file, and the rest of the run reads
    mlflow.MlflowClient().log_inputs(run_id, [mlflow.data.from_numpy(np.ones(2), name="later")])
    assert mlflow.get_run(run_id).info.run_id == run_id


def _replace_inputs(repo: Path, run_id: str, text: str) -> None:
    """Write a file onto the branch with plain git, as a hostile pusher would."""
    r = GitRepo(repo, "gitml")
    path = f"{C.run_dir(run_id)}/{C.RUN_INPUTS}"
    r.commit(lambda tree: {path: text.encode("utf-8", "surrogateescape")}, "hostile inputs")
    r.close()
    subprocess.run(["git", "log", "-1", "gitml"], cwd=repo, check=True, capture_output=True)

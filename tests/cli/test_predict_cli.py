"""`gitml models predict`: JSON and CSV inputs, output files, errors on stderr with exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import gitml
import gitml.pytorch
import gitml.sklearn
from tests.conftest import run_cli
from tests.models.cnn import Wide


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.random((20, 2)), columns=["a", "b"])


@pytest.fixture
def sk_model(tmp_path: Path, frame: pd.DataFrame) -> tuple[Path, LogisticRegression]:
    clf = LogisticRegression().fit(frame, (frame["a"] > 0.5).astype(int))
    gitml.sklearn.save_model(clf, tmp_path / "sk", input_example=frame.head(2))
    return tmp_path / "sk", clf


def test_csv_to_stdout(capsys: pytest.CaptureFixture[str], tmp_path: Path, frame: pd.DataFrame, sk_model: tuple[Path, LogisticRegression]) -> None:
    path, clf = sk_model
    frame.to_csv(tmp_path / "in.csv", index=False)
    code, out, err = run_cli(capsys, "models", "predict", "-m", str(path), "-i", str(tmp_path / "in.csv"))
    assert code == 0, err
    assert json.loads(out) == {"predictions": clf.predict(frame).tolist()}


@pytest.mark.parametrize(
    "payload",
    [
        lambda f: {"dataframe_split": {"columns": list(f.columns), "data": f.to_numpy().tolist()}},
        lambda f: {"dataframe_records": f.to_dict(orient="records")},
        lambda f: f.to_dict(orient="records"),
        lambda f: {"columns": list(f.columns), "data": f.to_numpy().tolist()},
    ],
)
def test_json_forms_to_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, frame: pd.DataFrame, sk_model: tuple[Path, LogisticRegression], payload: object) -> None:
    path, clf = sk_model
    (tmp_path / "in.json").write_text(json.dumps(payload(frame)))  # type: ignore[operator]
    code, out, err = run_cli(capsys, "models", "predict", "-m", str(path), "-i", str(tmp_path / "in.json"), "-o", str(tmp_path / "out.json"))
    assert code == 0, err
    assert out == ""
    assert json.loads((tmp_path / "out.json").read_text())["predictions"] == clf.predict(frame).tolist()


def test_saved_input_example_is_valid_input(capsys: pytest.CaptureFixture[str], sk_model: tuple[Path, LogisticRegression]) -> None:
    path, _ = sk_model
    code, out, err = run_cli(capsys, "models", "predict", "-m", str(path), "-i", str(path / "input_example.json"))
    assert code == 0, err
    assert len(json.loads(out)["predictions"]) == 2


def test_tensor_model_from_a_runs_uri(capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = Wide(3).eval()
    x = np.random.default_rng(0).random((2, 4), dtype=np.float32)
    with gitml.start_run():
        info = gitml.pytorch.log_model(net, "net", init_kwargs={"width": 3}, input_example=x)
    gitml.flush()
    (tmp_path / "x.json").write_text(json.dumps({"inputs": x.tolist()}))
    assert info.model_uri is not None
    code, out, err = run_cli(capsys, "-C", str(repo), "models", "predict", "-m", info.model_uri, "-i", str(tmp_path / "x.json"))
    assert code == 0, err
    expected = net(torch.from_numpy(x)).detach().numpy()
    assert np.allclose(np.asarray(json.loads(out)["predictions"]), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"dataframe_records": [{"a": 1.0}]}', "issing required column(s) ['b']"),
        ("{not json", "Malformed JSON"),
        ('{"dataframe_records": [{"a": "x", "b": 1.0}]}', "column 'a'"),
    ],
)
def test_bad_input_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str], tmp_path: Path, sk_model: tuple[Path, LogisticRegression], content: str, message: str) -> None:
    path, _ = sk_model
    (tmp_path / "in.json").write_text(content)
    code, out, err = run_cli(capsys, "models", "predict", "-m", str(path), "-i", str(tmp_path / "in.json"))
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and message in err


def test_missing_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text("[]")
    code, _, err = run_cli(capsys, "models", "predict", "-m", str(tmp_path / "nope"), "-i", str(tmp_path / "in.json"))
    assert code == 1 and "no model at" in err


def test_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "models", "predict", "--help")
    assert code == 0 and "--model-uri" in out and "--input-path" in out and "--output-path" in out

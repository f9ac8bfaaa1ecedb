"""Registered model names that Git tags (GTO's grammar) cannot hold fail clearly, before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import gitml as mlflow
from gitml.exceptions import InvalidParameterValue
from gitml.registry.tags import suggest_model_name, validate_model_name
from tests.conftest import git

Runs = Callable[..., str]


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("Image Classifier", "Image-Classifier"),  # MLflow's docs name models with spaces
        ("sklearn.model", "sklearn-model"),
        ("my model v1.2", "my-model-v1-2"),
        ("cnn@prod", "cnn-prod"),
        ("cnn#1", "cnn-1"),
        ("-cnn", "cnn"),
        ("cnn_", "cnn"),
        ("team//cnn", "team/cnn"),
        ("a..b", "a-b"),
        ("modèle", "mod-le"),
        ("__", None),
    ],
)
def test_names_git_cannot_hold_are_refused_with_the_rule_and_a_name_that_fits(
    name: str, suggestion: str | None
) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        validate_model_name(name)
    message = str(info.value)
    assert "Git tag '<name>@v<N>.0.0'" in message  # the mapping
    assert "letters, digits, '-', '_' and '/'" in message  # the rule
    assert suggest_model_name(name) == suggestion
    if suggestion:
        assert f"for example {suggestion!r}" in message
        assert validate_model_name(suggestion) == suggestion


@pytest.mark.parametrize("name", ["a", "iris", "image-classifier", "team/cnn", "Cnn_v2", "9lives"])
def test_names_that_fit_pass(name: str) -> None:
    assert validate_model_name(name) == name


def test_register_model_refuses_before_writing(repo: Path, new_model_run: Runs) -> None:
    run_id = new_model_run({"accuracy": 0.9})
    with pytest.raises(mlflow.MlflowException, match="for example 'Image-Classifier'") as info:
        mlflow.register_model(f"runs:/{run_id}/model", "Image Classifier")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert git("tag", "-l", cwd=repo) == ""
    assert mlflow.search_registered_models() == []


def test_create_registered_model_refuses(repo: Path) -> None:
    client = mlflow.MlflowClient()
    with pytest.raises(InvalidParameterValue, match="'sklearn-model'"):
        client.create_registered_model("sklearn.model")
    assert client.search_registered_models() == []


def test_log_model_with_a_bad_registered_name_logs_nothing(repo: Path) -> None:
    sklearn = pytest.importorskip("sklearn", reason="scikit-learn is needed for a real model")
    from sklearn.linear_model import LinearRegression

    import gitml.sklearn

    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
    assert sklearn is not None
    with mlflow.start_run() as run:
        with pytest.raises(InvalidParameterValue, match="invalid registered model name 'my model'"):
            gitml.sklearn.log_model(model, "model", registered_model_name="my model")
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id) == []
    assert git("tag", "-l", cwd=repo) == ""

"""MLflow's public paths still lead to gitml's objects after the house moved (faces, client)."""

from __future__ import annotations

import importlib

import pytest

import gitml


def test_every_name_in_all_resolves() -> None:
    missing = [n for n in gitml.__all__ if getattr(gitml, n, None) is None]
    assert missing == []


def test_mlflow_client_is_one_class_on_every_path() -> None:
    from gitml.client import GitMLClient, MlflowClient
    from gitml.tracking import MlflowClient as TrackingFace
    from gitml.tracking.client import MlflowClient as ModuleFace

    assert gitml.MlflowClient is MlflowClient is TrackingFace is ModuleFace is GitMLClient


@pytest.mark.parametrize(
    "method",
    ["create_experiment", "search_runs", "log_metric", "log_artifact", "download_artifacts",
     "create_registered_model", "create_model_version", "transition_model_version_stage",
     "set_registered_model_alias", "get_latest_versions", "search_model_versions"],
)  # fmt: skip
def test_the_composed_client_has_the_tracking_and_registry_methods(method: str) -> None:
    from gitml.client import MlflowClient

    assert callable(getattr(MlflowClient, method))
    assert getattr(MlflowClient, method).__doc__  # the part's own docstring


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("gitml.entities", "FileInfo"),
        ("gitml.entities", "Run"),
        ("gitml.artifacts", "download_artifacts"),
        ("gitml.artifacts", "list_artifacts"),
        ("gitml.artifacts", "load_dict"),
        ("gitml.models", "infer_signature"),
        ("gitml.models.signature", "ParamSchema"),
        ("gitml.models.signature", "ParamSpec"),
        ("gitml.types", "ParamSchema"),
        ("gitml.types", "ParamSpec"),
        ("gitml.models", "validate_serving_input"),
        ("gitml.models", "convert_input_example_to_serving_input"),
        ("gitml.pyfunc", "log_model"),
        ("gitml.pyfunc", "load_model"),
        ("gitml.pytorch", "log_model"),
        ("gitml.sklearn", "log_model"),
        ("gitml.keras", "log_model"),
        ("gitml.tensorflow", "log_model"),
        ("gitml.projects", "run"),
    ],
)
def test_mlflow_public_names_exist(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is not None

"""search_registered_models / search_model_versions with MLflow's `tags.` filters, as MLflow scripts write them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import gitml as mlflow
from gitml.exceptions import InvalidParameterValue

Runs = Callable[..., str]


@pytest.fixture
def models(repo: Path, new_model_run: Runs) -> mlflow.MlflowClient:
    client = mlflow.MlflowClient()
    for name, tags in [("iris", {"team": "vision", "my key": "alpha"}), ("fraud", {"team": "risk"}), ("plain", {})]:
        client.create_registered_model(name, tags=tags)
        for _ in range(2):
            mlflow.register_model(f"runs:/{new_model_run({'acc': 0.9})}/model", name)
    client.set_model_version_tag("iris", "1", "validated", "true")
    client.set_model_version_tag("iris", "2", "validated", "false")
    client.set_model_version_tag("fraud", "2", "validated", "true")
    return client


def _names(found: list) -> list[str]:
    return sorted(m.name for m in found)


def _versions(found: list) -> list[tuple[str, int]]:
    return sorted((v.name, int(v.version)) for v in found)


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("tags.team = 'vision'", ["iris"]),
        ("tags.team != 'vision'", ["fraud"]),  # a model without the tag matches no tag clause
        ("tags.team LIKE 'r%'", ["fraud"]),
        ("tags.team ILIKE 'VISION'", ["iris"]),
        ("tags.`my key` = 'alpha'", ["iris"]),
        ('tags."my key" = "alpha"', ["iris"]),
        ("tag.team = 'risk'", ["fraud"]),
        ("name LIKE '%i%' AND tags.team = 'vision'", ["iris"]),
        ("name = 'fraud' AND tags.team = 'vision'", []),
        ("name ILIKE 'PLAIN'", ["plain"]),
        ("", ["fraud", "iris", "plain"]),
    ],
)
def test_registered_models_by_tag(models: mlflow.MlflowClient, filter_string: str, expected: list[str]) -> None:
    assert _names(models.search_registered_models(filter_string=filter_string)) == expected
    assert _names(mlflow.search_registered_models(filter_string=filter_string)) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("tags.validated = 'true'", [("fraud", 2), ("iris", 1)]),
        ("name = 'iris' AND tags.validated = 'true'", [("iris", 1)]),
        ("tags.validated != 'true'", [("iris", 2)]),
        ("name='iris'", [("iris", 1), ("iris", 2)]),
        ("name IN ('iris', 'plain') AND tags.validated LIKE 'f%'", [("iris", 2)]),
    ],
)
def test_model_versions_by_tag(models: mlflow.MlflowClient, filter_string: str, expected: list) -> None:
    assert _versions(models.search_model_versions(filter_string)) == expected
    assert _versions(mlflow.search_model_versions(filter_string=filter_string)) == expected


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [
        ("tags.team > 'a'", "is not one of"),
        ("tags.team = 5", "quoted strings"),
        ("tags.team IN ('a')", "is not one of"),
        ("owner = 'x'", "invalid filter field"),
        ("tags. = 'x'", "tag key"),
        ("tags.a b = 'x'", "is not one of"),
        ("name = 'iris' OR name = 'fraud'", "joined by AND"),
        ("name = 'iris' AND", "ends too early"),
        ("name = iris", "quoted strings"),
    ],
)
def test_bad_filters(models: mlflow.MlflowClient, filter_string: str, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        models.search_registered_models(filter_string=filter_string)


def test_a_quoted_and_is_a_value_not_a_joint(models: mlflow.MlflowClient) -> None:
    models.set_registered_model_tag("plain", "note", "this AND that")
    assert _names(models.search_registered_models("tags.note = 'this AND that'")) == ["plain"]

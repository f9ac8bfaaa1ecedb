"""The tag grammar: GTO's names round-trip through format_tag/parse_tag; bad names are refused."""

from __future__ import annotations

import pytest

from gitml.exceptions import InvalidParameterValue
from gitml.registry.tags import (
    Action,
    TagName,
    format_tag,
    mlflow_stage_of,
    parse_tag,
    semver_key,
    stage_of_mlflow,
    validate_alias,
    validate_model_name,
    validate_stage,
)

MODELS = ["m", "iris", "Iris-2", "team/fraud_model", "a1/b2/c3", "x_y-z", "dir:model"]
VERSIONS = [
    "v1.0.0",
    "v0.0.1",
    "v12.3.45",
    "v1.0.0-rc.1",
    "v2.0.0+build.7",
    "v1.2.3-alpha.beta+exp.sha.5114f85",
]
STAGES = ["production", "staging", "archived", "champion", "dev-eu", "Prod_2"]
COUNTERS = [None, 1, 7, 1234]


def _cases() -> list[TagName]:
    cases = []
    for model in MODELS:
        for counter in COUNTERS:
            for version in VERSIONS:
                cases.append(TagName(model, Action.REGISTER, version=version, counter=counter))
                cases.append(TagName(model, Action.DEREGISTER, version=version, counter=counter))
            for stage in STAGES:
                cases.append(TagName(model, Action.ASSIGN, stage=stage, counter=counter))
                cases.append(TagName(model, Action.UNASSIGN, stage=stage, counter=counter))
            cases.append(TagName(model, Action.DEPRECATE, counter=counter))
    return cases


@pytest.mark.parametrize("case", _cases(), ids=str)
def test_round_trip(case: TagName) -> None:
    name = format_tag(
        case.model, case.action, version=case.version, stage=case.stage, counter=case.counter
    )
    assert parse_tag(name) == case


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("iris@v1.0.0", TagName("iris", Action.REGISTER, version="v1.0.0")),
        ("iris@v1.0.0!", TagName("iris", Action.DEREGISTER, version="v1.0.0")),
        ("iris#prod#3", TagName("iris", Action.ASSIGN, stage="prod", counter=3)),
        ("iris#prod!#4", TagName("iris", Action.UNASSIGN, stage="prod", counter=4)),
        ("iris#prod", TagName("iris", Action.ASSIGN, stage="prod")),
        ("iris#prod!", TagName("iris", Action.UNASSIGN, stage="prod")),
        ("iris@deprecated", TagName("iris", Action.DEPRECATE)),
        ("iris@deprecated#9", TagName("iris", Action.DEPRECATE, counter=9)),
        ("models=iris@v0.0.1", TagName("models:iris", Action.REGISTER, version="v0.0.1")),
    ],
)
def test_parse_known_forms(name: str, expected: TagName) -> None:
    assert parse_tag(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "v1.0.0",
        "iris",
        "iris@1.0.0",
        "iris@v1.0",
        "iris@v01.0.0",
        "iris#",
        "iris#-x#1",
        "@v1.0.0",
        "iris@created",
        "iris@deprecated!",
        "iris#prod#x",
        "-iris@v1.0.0",
        "iris@latest",
        "ir is@v1.0.0",
    ],
)
def test_not_registry_tags(name: str) -> None:
    assert parse_tag(name) is None


@pytest.mark.parametrize(
    "name", ["a@b", "a#b", "has space", "a..b", "-lead", "trail-", "a//b", "", "x/", "/x", "é"]
)
def test_invalid_model_names(name: str) -> None:
    with pytest.raises(InvalidParameterValue):
        validate_model_name(name)


@pytest.mark.parametrize("name", ["a", "iris", "team/fraud", "A1_b-2"])
def test_valid_model_names(name: str) -> None:
    assert validate_model_name(name) == name


def test_validate_rejects_non_strings() -> None:
    with pytest.raises(InvalidParameterValue):
        validate_model_name(None)
    with pytest.raises(InvalidParameterValue):
        validate_stage(3)


@pytest.mark.parametrize(
    "alias", ["production", "Staging", "None", "latest", "v3", "a/b", "bad alias", "x#y"]
)
def test_invalid_aliases(alias: str) -> None:
    with pytest.raises(InvalidParameterValue):
        validate_alias(alias)


def test_valid_alias() -> None:
    assert validate_alias("champion") == "champion"
    assert validate_alias("v1x") == "v1x"


def test_stage_mapping() -> None:
    assert stage_of_mlflow("Production") == "production"
    assert stage_of_mlflow("staging") == "staging"
    assert stage_of_mlflow("ARCHIVED") == "archived"
    assert stage_of_mlflow("None") is None
    assert mlflow_stage_of("production") == "Production"
    assert mlflow_stage_of("champion") is None
    with pytest.raises(InvalidParameterValue):
        stage_of_mlflow("prod")


def test_semver_order() -> None:
    ordered = [
        "v0.0.1",
        "v0.0.2",
        "v0.1.0",
        "v1.0.0-alpha",
        "v1.0.0-alpha.1",
        "v1.0.0-alpha.beta",
        "v1.0.0-beta.2",
        "v1.0.0-beta.11",
        "v1.0.0-rc.1",
        "v1.0.0",
        "v1.2.3",
        "v2.0.0",
        "v10.0.0",
    ]
    assert sorted(reversed(ordered), key=semver_key) == ordered
    with pytest.raises(InvalidParameterValue):
        semver_key("1.0.0")


def test_format_checks_arguments() -> None:
    with pytest.raises(InvalidParameterValue):
        format_tag("iris", Action.REGISTER)
    with pytest.raises(InvalidParameterValue):
        format_tag("iris", Action.ASSIGN, version="v1.0.0")

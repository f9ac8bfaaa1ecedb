"""MLflow's own example filter and order_by strings (its search-utils test cases) against gitml's grammar.

What MLflow accepts is accepted and means the same; what MLflow refuses is refused, except the
documented gitml extensions (OR and parentheses, IN on params/tags, IS NULL on metrics and
attributes, `run_uuid`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import gitml as mlflow
from gitml.exceptions import InvalidParameterValue
from gitml.tracking.search import compile_filter, compile_order_by, parse_identifier


@pytest.mark.parametrize(
    ("filter_string", "entity", "key"),
    [
        ("metric.acc >= 0.94", "metrics", "acc"),
        ("metric.acc>=100", "metrics", "acc"),
        ("params.m!='tf'", "params", "m"),
        ('params."m"!="tf"', "params", "m"),
        ('metric."legit name" >= 0.243', "metrics", "legit name"),
        ("metrics.XYZ = 3", "metrics", "XYZ"),
        ('params."cat dog" = "pets"', "params", "cat dog"),
        ('metrics."X-Y-Z" = 3', "metrics", "X-Y-Z"),
        ('metrics."X//Y#$$@&Z" = 3', "metrics", "X//Y#$$@&Z"),
        ("params.model = 'LinearRegression'", "params", "model"),
        ("`metric`.a >= 0.1", "metrics", "a"),
        ("`params`.model = 'LR'", "params", "model"),
        ("tags.version = 'commit-hash'", "tags", "version"),
        ("`tags`.source_name = 'a notebook'", "tags", "source_name"),
        ('metrics."accuracy.2.0" > 5', "metrics", "accuracy.2.0"),
        ("metrics.`spacey name` > 5", "metrics", "spacey name"),
        ('params."p.a.r.a.m" != "a"', "params", "p.a.r.a.m"),
        ('tags."t.a.g" = "a"', "tags", "t.a.g"),
        ("attribute.artifact_uri = '1/23/4'", "attributes", "artifact_uri"),
        ("attribute.start_time >= 1234", "attributes", "start_time"),
        ("run.status = 'RUNNING'", "attributes", "status"),
        ("tags.version IS NULL", "tags", "version"),
        ("tags.version IS NOT NULL", "tags", "version"),
        ("params.lr IS NULL", "params", "lr"),
        ("params.lr IS NOT NULL", "params", "lr"),
        ("`Run name` = 'x'", "attributes", "run_name"),
        ("`Run Name` = 'x'", "attributes", "run_name"),
        ("attributes.`run name` = 'x'", "attributes", "run_name"),
        ("Created > 0", "attributes", "start_time"),
        ("ATTRIBUTES.STATUS = 'FINISHED'", "attributes", "status"),  # any case
        ("METRICS.acc > 0", "metrics", "acc"),
        ("attributes.run_uuid = 'x'", "attributes", "run_id"),  # gitml extension
    ],
)
def test_mlflow_accepts_and_so_does_gitml(filter_string: str, entity: str, key: str) -> None:
    compile_filter(filter_string)
    ident = filter_string.split(" IS ")[0] if " IS " in filter_string else filter_string
    for op in ("!=", ">=", "<=", "=", ">", "<"):
        if op in ident:
            ident = ident.split(op)[0]
            break
    assert parse_identifier(ident) == (entity, key)


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [
        ("metric.acc >= 0.94; metrics.rmse < 1", "cannot parse"),
        ("m.acc >= 0.94", "invalid entity type"),
        ("acc >= 0.94", "invalid attribute key"),
        ("p.model >= 'LR'", "invalid entity type"),
        ("attri.x != 1", "invalid entity type"),
        ("a.x != 1", "invalid entity type"),
        ("model >= 'LR'", "invalid attribute key"),
        ("metrics.A > 0.1 NAND params.B = 'LR'", "unexpected"),
        ("`metrics.A > 0.1", "cannot parse"),
        ("param`.A > 0.1", "cannot parse"),
        ("`dummy.A > 0.1", "cannot parse"),
        ("dummy`.A > 0.1", "cannot parse"),
        ("attribute.start != 1", "invalid attribute key"),
        ("attribute.experiment_id != 1", "invalid attribute key"),
        ("attribute.lifecycle_stage = 'ACTIVE'", "invalid attribute key"),
        ("attribute.name != 1", "invalid attribute key"),
        ("attribute.time != 1", "invalid attribute key"),
        ("attribute._status != 'RUNNING'", "invalid attribute key"),
        ("attribute.status = true", "expected a value"),
        ("dataset.name = 'my_dataset'", "invalid entity type"),  # gitml tracks no datasets
        ("metric.model = 'LR'", "compared with numbers"),
        ("metric.model = '5'", "compared with numbers"),
        ("params.acc = 5", "values are strings"),
        ("tags.acc = 5", "values are strings"),
        ("metrics.acc != metrics.acc", "expected a value"),
        ("1.0 > metrics.acc", "expected an identifier"),
        ("attribute.status = 1", "values are strings"),
        ("params.acc = LR", "expected a value"),
        ("tags.acc = LR", "expected a value"),
        ("params.acc = `LR`", "expected a value"),
        ("params.'acc = LR", "cannot parse"),
        ("params.acc = 'LR", "cannot parse"),
        ("params.acc = LR'", "cannot parse"),
        ("params.acc = \"LR'", "cannot parse"),
        ("tags.acc = = 'LR'", "expected a value"),
        ("attribute.status IS 'RUNNING'", "expected 'NULL'"),
        ("params.acc LR !=", "not a comparison operator"),
        ("params.acc LR", "not a comparison operator"),
        ("metric.acc !=", "ends too early"),
        ("acc != 1.0", "invalid attribute key"),
        ("foo is null", "invalid attribute key"),
        ("1=1", "expected an identifier"),
        ("1==2", "expected an identifier"),
        ("metrics.a b > 1", "not a comparison operator"),
    ],
)
def test_mlflow_refuses_and_so_does_gitml(filter_string: str, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=f"(?i){message}"):
        compile_filter(filter_string)


@pytest.mark.parametrize(
    "filter_string",
    [
        "metrics.A > 0.1 OR params.B = 'LR'",
        "metrics.A > 0.1 AND (params.B = 'LR')",
        "params.B IN ('LR', 'RF')",
        "metrics.acc IS NULL",
        "attribute.status IS NULL",
    ],
)
def test_documented_extensions(filter_string: str) -> None:
    compile_filter(filter_string)


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        ("m.acc", "invalid entity type"),
        ("acc", "invalid attribute key"),
        ("attri.x", "invalid entity type"),
        ("`metrics.A", "cannot parse"),
        ("`metrics.A`", "invalid attribute key"),  # one backticked name is an attribute name
        ("attribute.start", "invalid attribute key"),
        ("attribute.experiment_id", "invalid attribute key"),
        ("metrics.A != 1", "invalid order_by clause"),
        ("metrics.A = 1", "invalid order_by clause"),
        ("attribute.run_id ACS", "invalid ordering key"),
        ("attribute.run_id decs", "invalid ordering key"),
        ("metrics.acc DESC extra", "invalid order_by clause"),
        ("", "invalid order_by clause"),
    ],
)
def test_order_by_refused_as_mlflow_refuses(order_by: str, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=f"(?i){message}"):
        compile_order_by([order_by])


@pytest.mark.parametrize(
    "order_by",
    [
        "metrics.`Mean Square Error`",
        "metrics.`Mean Square Error` ASC",
        "metrics.`Mean Square Error` DESC",
        "metrics.key1 asc",
        'metrics."key1"  desc',
        "params.my_param aSc",
        "params.`my_param` DESC",
        "attributes.status  ASC",
        "tags.tag1    DESC",
        "`Run name` DESC",
        "Created",
    ],
)
def test_order_by_accepted(order_by: str) -> None:
    compile_order_by([order_by])


# -- the same, end to end, the way an MLflow script searches -------------------------------
@pytest.fixture
def runs(repo: Path) -> dict[str, str]:
    out = {}
    for name, metrics, params in [
        ("first", {"Mean Square Error": 0.3, "acc": 0.9}, {"my param": "A"}),
        ("second", {"Mean Square Error": 0.1, "acc": 0.8}, {"my param": "B"}),
        ("third", {"acc": 0.7}, {}),
    ]:
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_metrics(metrics)
            mlflow.log_params(params)
        out[name] = run.info.run_id
    return out


def _names(found: list) -> list[str]:
    return [r.info.run_name for r in found]


def test_backticked_names_end_to_end(runs: dict[str, str]) -> None:
    search = lambda f, o=None: _names(mlflow.search_runs(filter_string=f, order_by=o, output_format="list"))  # noqa: E731
    assert search("`metric`.acc >= 0.8", ["metrics.acc DESC"]) == ["first", "second"]
    assert search("metrics.`Mean Square Error` < 0.2") == ["second"]
    assert search("params.`my param` = 'A'") == ["first"]
    assert search("`Run name` = 'third'") == ["third"]
    assert search("attributes.`Run Name` LIKE 's%'") == ["second"]
    assert search("", ["metrics.`Mean Square Error` DESC"]) == ["first", "second", "third"]
    assert search("", ["`Run name`"]) == ["first", "second", "third"]


def test_max_results_zero(runs: dict[str, str]) -> None:
    assert mlflow.search_runs(max_results=0, output_format="list") == []
    assert len(mlflow.search_runs(max_results=0)) == 0  # a DataFrame with no rows
    assert list(mlflow.MlflowClient().search_runs(["0"], max_results=0)) == []
    with pytest.raises(InvalidParameterValue):  # the filter is still checked
        mlflow.search_runs(filter_string="m.acc > 1", max_results=0)
    assert mlflow.search_experiments(max_results=0) == []

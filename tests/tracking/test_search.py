"""search_runs: MLflow's filter grammar, each operator and its errors, order_by and paging."""

from __future__ import annotations

from pathlib import Path

import pytest

import gitml as mlflow
from gitml.client import MlflowClient
from gitml.entities import ViewType
from gitml.exceptions import InvalidParameterValue


@pytest.fixture
def runs(repo: Path) -> dict[str, str]:
    """Four runs with different metrics, params and tags; returns name -> run id."""
    out = {}
    specs = [
        ("a", {"acc": 0.9, "loss": 0.3}, {"lr": "0.1", "opt": "adam"}, {"team": "Vision", "my tag": "x"}),
        ("b", {"acc": 0.8, "loss": 0.5}, {"lr": "0.01", "opt": "sgd"}, {"team": "nlp"}),
        ("c", {"acc": 0.95}, {"lr": "0.1"}, {}),
        ("d", {"acc": float("nan"), "loss": 0.1}, {"lr": "0.001", "opt": "Adam"}, {"team": "vision"}),
    ]
    for name, metrics, params, tags in specs:
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_metrics(metrics)
            mlflow.log_params(params)
            mlflow.set_tags(tags)
        out[name] = run.info.run_id
    return out


def names(found: list) -> list[str]:
    return [r.info.run_name for r in found]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("", {"a", "b", "c", "d"}),
        ("metrics.acc > 0.85", {"a", "c"}),
        ("metrics.acc >= 0.9", {"a", "c"}),
        ("metrics.acc < 0.9", {"b"}),
        ("metrics.acc <= 0.9", {"a", "b"}),
        ("metrics.acc = 0.8", {"b"}),
        ("metrics.acc != 0.8", {"a", "c"}),
        ("metric.loss < 0.4", {"a", "d"}),
        ("params.lr = '0.1'", {"a", "c"}),
        ('params.lr = "0.1"', {"a", "c"}),
        ("params.lr != '0.1'", {"b", "d"}),
        ("params.opt LIKE 'a%'", {"a"}),
        ("params.opt ILIKE 'a%'", {"a", "d"}),
        ("params.opt IS NULL", {"c"}),
        ("params.opt IS NOT NULL", {"a", "b", "d"}),
        ("params.lr IN ('0.1', '0.01')", {"a", "b", "c"}),
        ("params.lr NOT IN ('0.1')", {"b", "d"}),
        ("tags.team = 'nlp'", {"b"}),
        ("tags.team ILIKE 'vision'", {"a", "d"}),
        ("tags.`my tag` = 'x'", {"a"}),
        ('tags."my tag" = \'x\'', {"a"}),
        ("tags.team IN ('nlp', 'vision')", {"b", "d"}),
        ("attributes.run_name = 'b'", {"b"}),
        ("attributes.run_name IN ('a', 'c')", {"a", "c"}),
        ("attributes.status = 'FINISHED'", {"a", "b", "c", "d"}),
        ("attributes.run_name LIKE '%c%'", {"c"}),
        ("metrics.acc > 0.85 AND params.lr = '0.1'", {"a", "c"}),
        ("metrics.acc > 0.85 and params.opt = 'adam'", {"a"}),
        ("params.lr = '0.01' OR params.lr = '0.001'", {"b", "d"}),
        ("(params.lr = '0.01' OR tags.team = 'vision') AND metrics.loss < 1", {"b", "d"}),
        ("metrics.missing > 0", set()),
    ],
)
def test_filter(runs: dict[str, str], filter_string: str, expected: set[str]) -> None:
    found = MlflowClient().search_runs(["0"], filter_string)
    assert set(names(found)) == expected


def test_attribute_run_id_and_times(runs: dict[str, str]) -> None:
    client = MlflowClient()
    assert names(client.search_runs(["0"], f"attributes.run_id = '{runs['b']}'")) == ["b"]
    ids = ", ".join(f"'{runs[n]}'" for n in ("a", "d"))
    assert set(names(client.search_runs(["0"], f"attributes.run_id IN ({ids})"))) == {"a", "d"}
    start = client.get_run(runs["c"]).info.start_time
    assert set(names(client.search_runs(["0"], f"attributes.start_time >= {start}"))) >= {"c", "d"}


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.acc > 'high'",
        "params.lr > '0.1'",
        "params.lr = 0.1",
        "foo.bar = 1",
        "attributes.nope = 'x'",
        "metrics.acc >",
        "metrics.acc 0.5",
        "metrics.acc > 0.5 AND",
        "(metrics.acc > 0.5",
        "params.lr IN 0.1",
        "metrics.acc LIKE '%1'",
    ],
)
def test_bad_filters_are_clear_errors(runs: dict[str, str], bad: str) -> None:
    with pytest.raises(InvalidParameterValue) as e:
        MlflowClient().search_runs(["0"], bad)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_order_by_with_missing_values_last(runs: dict[str, str]) -> None:
    client = MlflowClient()
    assert names(client.search_runs(["0"], "", order_by=["metrics.acc DESC"])) == ["c", "a", "b", "d"]
    assert names(client.search_runs(["0"], "", order_by=["metrics.acc ASC"])) == ["b", "a", "c", "d"]
    assert names(client.search_runs(["0"], "", order_by=["metrics.loss"]))[-1] == "c"
    assert names(client.search_runs(["0"], "", order_by=["params.opt ASC"]))[-1] == "c"
    assert names(client.search_runs(["0"], "", order_by=["attributes.run_name DESC"])) == ["d", "c", "b", "a"]
    # default: newest first
    assert names(client.search_runs(["0"], "")) == ["d", "c", "b", "a"]
    with pytest.raises(InvalidParameterValue):
        client.search_runs(["0"], "", order_by=["nope.x"])


def test_paging(runs: dict[str, str]) -> None:
    client = MlflowClient()
    page1 = client.search_runs(["0"], "", max_results=3, order_by=["attributes.run_name"])
    assert names(page1) == ["a", "b", "c"] and page1.token
    page2 = client.search_runs(["0"], "", max_results=3, order_by=["attributes.run_name"], page_token=page1.token)
    assert names(page2) == ["d"] and page2.token is None
    with pytest.raises(InvalidParameterValue):
        client.search_runs(["0"], "", page_token="garbage!")
    assert list(client.search_runs(["0"], "", max_results=0)) == []  # MLflow's answer: no runs
    with pytest.raises(InvalidParameterValue):
        client.search_runs(["0"], "", max_results=-1)


def test_view_types_and_experiments(runs: dict[str, str]) -> None:
    client = MlflowClient()
    client.delete_run(runs["a"])
    assert "a" not in names(client.search_runs(["0"]))
    assert names(client.search_runs(["0"], run_view_type=ViewType.DELETED_ONLY)) == ["a"]
    assert len(client.search_runs(["0"], run_view_type=ViewType.ALL)) == 4
    exp = client.create_experiment("other")
    assert list(client.search_runs([exp])) == []
    assert len(client.search_runs(None)) == 3


def test_index_is_disposable(runs: dict[str, str], repo: Path) -> None:
    client = MlflowClient()
    assert len(client.search_runs(["0"])) == 4
    from gitml.tracking import tracker

    tracker.reset_all()
    index = repo / ".git" / "gitml" / "index.sqlite"
    index.write_bytes(b"this is not a database")
    for suffix in ("-wal", "-shm"):
        (repo / ".git" / "gitml" / f"index.sqlite{suffix}").unlink(missing_ok=True)
    assert len(MlflowClient().search_runs(["0"])) == 4
    tracker.reset_all()
    index.unlink()
    assert len(MlflowClient().search_runs(["0"], "metrics.acc > 0.85")) == 2


def test_index_follows_new_commits_from_other_writers(runs: dict[str, str], repo: Path) -> None:
    import subprocess
    import sys

    client = MlflowClient()
    assert len(client.search_runs(["0"])) == 4
    script = "import gitml\nwith gitml.start_run(run_name='e'):\n    gitml.log_metric('acc', 0.99)\n"
    subprocess.run([sys.executable, "-c", script], cwd=repo, check=True)
    assert names(client.search_runs(["0"], "metrics.acc > 0.96")) == ["e"]


def test_changing_a_result_does_not_change_the_next_search(runs: dict[str, str]) -> None:
    client = MlflowClient()
    first = client.search_runs(["0"], "params.lr = '0.1'")
    assert first
    want = {r.info.run_id: (dict(r.data.params), dict(r.data.metrics)) for r in first}
    for r in first:  # what a script may do to the objects it got
        r.data.params["lr"] = "changed"
        r.data.metrics.clear()
        r.data.tags["x"] = "y"
    again = client.search_runs(["0"], "params.lr = '0.1'")
    assert {r.info.run_id: (r.data.params, r.data.metrics) for r in again} == want
    assert all("x" not in r.data.tags for r in again)

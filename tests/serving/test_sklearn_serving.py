"""A real scikit-learn model behind `gitml models serve`: numeric tables skip the DataFrame,
and every way of sending the rows gets the estimator's own answers."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.serving.conftest import GITML, Server, free_port
from tests.serving.test_app import metric, post


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Any, Any]]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import gitml.sklearn
    from gitml.models import infer_signature

    X, y = load_iris(return_X_y=True, as_frame=True)
    est = LogisticRegression(max_iter=500).fit(X, y)
    path = tmp_path_factory.mktemp("models") / "iris"
    gitml.sklearn.save_model(est, str(path), signature=infer_signature(X, est.predict(X)))
    port = free_port()
    server = Server([*GITML, "models", "serve", "-m", str(path), "--port", str(port)], port)
    server.wait(deadline_s=90)
    yield server, X, est
    server.stop()


def test_every_format_gets_the_estimators_answers(iris: tuple[Server, Any, Any]) -> None:
    server, X, est = iris
    want = est.predict(X).tolist()
    reordered = X[list(reversed(X.columns))]  # matched by name: the DataFrame path
    for body in (
        {"dataframe_split": X.to_dict(orient="split")},
        {"dataframe_split": reordered.to_dict(orient="split")},
        {"dataframe_records": X.to_dict(orient="records")},
        {"inputs": X.to_dict(orient="list")},
    ):
        r = post(server, body)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == want
    csv = X.to_csv(index=False).encode()
    assert post(server, csv, "text/csv").json()["predictions"] == want
    # integers where the signature says double are cast, as the DataFrame path casts them
    ints = X.head(5).round().astype(int)
    got = post(server, {"dataframe_split": ints.to_dict(orient="split")}).json()["predictions"]
    assert got == est.predict(ints.astype(float)).tolist()


def test_concurrent_one_row_requests_are_merged_and_answered_each(
    iris: tuple[Server, Any, Any],
) -> None:
    server, X, est = iris
    want = est.predict(X).tolist()
    calls_before = metric(server, "gitml_batch_rows_count")
    columns = list(X.columns)

    def one(i: int) -> Any:
        body = {"dataframe_split": {"columns": columns, "data": [X.iloc[i].tolist()]}}
        with httpx.Client() as client:
            r = client.post(server.url + "/invocations", json=body)
        assert r.status_code == 200, r.text
        return r.json()["predictions"][0]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(one, range(len(X))))
    assert got == want
    calls = metric(server, "gitml_batch_rows_count") - calls_before
    assert 0 < calls <= len(X)


def test_bad_tables_are_400_and_the_server_keeps_serving(iris: tuple[Server, Any, Any]) -> None:
    server, X, est = iris
    cols = list(X.columns)
    bad = [
        ({"dataframe_split": {"columns": cols[:3], "data": [[1, 2, 3]]}}, "Missing required"),
        ({"dataframe_split": {"columns": cols, "data": [[1, 2, 3]]}}, "4 values"),
        ({"dataframe_split": {"columns": cols, "data": [["a", "b", "c", "d"]]}}, "double"),
        ({"dataframe_split": {"columns": cols, "data": []}}, "Empty batch"),
        ({"dataframe_split": {"columns": cols, "data": [[None, 1, 2, 3]]}}, "nulls"),
        (b'{"dataframe_split": {"data": [[1e400, 1, 2, 3]]}}', "infinity"),
    ]
    for body, needle in bad:
        r = post(server, body)
        assert r.status_code == 400 and needle in r.json()["message"], r.text
    r = post(server, {"dataframe_split": {"columns": cols, "data": [X.iloc[0].tolist()]}})
    assert r.json()["predictions"] == est.predict(X.head(1)).tolist()
    refused = metric(server, "gitml_requests_total", endpoint="/invocations", status="400")
    assert refused >= len(bad)

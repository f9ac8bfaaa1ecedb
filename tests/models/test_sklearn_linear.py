"""The linear shortcut of the scikit-learn flavor: the estimator's own answers, or not used."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_iris, make_classification, make_regression  # noqa: E402
from sklearn.linear_model import (  # noqa: E402
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
)
from sklearn.svm import LinearSVC  # noqa: E402

import gitml.sklearn  # noqa: E402
from gitml.models.flavors.sklearn._linear import linear_predict  # noqa: E402
from gitml.models.predictor import load_model  # noqa: E402


def _fitted() -> list[tuple[str, Any, Any]]:
    Xc, yc = make_classification(200, 6, n_informative=4, n_classes=3, random_state=0)
    Xb, yb = make_classification(200, 5, random_state=1)
    Xr, yr = make_regression(200, 5, random_state=2)
    _, Yr = make_regression(200, 5, n_targets=3, random_state=3)
    words = np.array(["cat", "dog"])[yb]
    return [
        ("logistic, 3 classes", LogisticRegression(max_iter=500).fit(Xc, yc), Xc),
        ("logistic, binary, string labels", LogisticRegression().fit(Xb, words), Xb),
        ("linear SVC", LinearSVC().fit(Xb, yb), Xb),
        ("SGD classifier", SGDClassifier(random_state=0).fit(Xc, yc), Xc),
        ("least squares", LinearRegression().fit(Xr, yr), Xr),
        ("least squares, 3 targets", LinearRegression().fit(Xr, Yr), Xr),
        ("ridge", Ridge().fit(Xr, yr), Xr),
        ("lasso", Lasso().fit(Xr, yr), Xr),
        ("elastic net, no intercept", ElasticNet(fit_intercept=False).fit(Xr, yr), Xr),
    ]


@pytest.mark.parametrize("label,est,X", _fitted(), ids=[f[0] for f in _fitted()])
def test_the_shortcut_answers_exactly_as_the_estimator(label: str, est: Any, X: Any) -> None:
    fast = linear_predict(est)
    assert fast is not None, f"{label}: no shortcut"
    rng = np.random.default_rng(7)
    for rows in (1, 2, 17, len(X)):
        x = np.ascontiguousarray(X[:rows]) if rows <= len(X) else X
        want, got = est.predict(x), fast(x)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)
    far = rng.standard_normal((50, X.shape[1])) * 1e6
    assert np.array_equal(fast(far), est.predict(far))


def test_input_the_shortcut_does_not_take_goes_to_the_estimator() -> None:
    X, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=500).fit(X, y)
    fast = linear_predict(est)
    assert fast is not None
    for odd in (
        X[:3].astype(np.float32),  # scikit-learn keeps float32
        X[:3].astype(np.int64),
        np.asfortranarray(X[:3]),
        X[:3, :2],  # wrong width: the estimator's own error
        np.array([[np.nan, 1.0, 2.0, 3.0]]),  # not finite: the estimator's own error
        np.empty((0, 4)),
        X[:3].tolist(),
    ):
        assert fast(odd) is None


def test_estimators_that_change_predict_get_no_shortcut() -> None:
    X, y = load_iris(return_X_y=True)

    class Shifted(LogisticRegression):
        def predict(self, X: Any) -> Any:
            return super().predict(X) + 1

    class Scaled(LogisticRegression):
        def decision_function(self, X: Any) -> Any:
            return super().decision_function(X) * -1

    for cls in (Shifted, Scaled):
        assert linear_predict(cls(max_iter=500).fit(X, y)) is None


def test_a_shortcut_that_would_disagree_is_not_used() -> None:
    X, y = load_iris(return_X_y=True)
    est = LogisticRegression(max_iter=500).fit(X, y)
    est.classes_ = est.classes_.astype(object)  # object labels: the estimator's own path
    assert linear_predict(est) is None
    est = LinearRegression().fit(X, y)
    est.n_features_in_ = 0  # nothing to check the shortcut against
    assert linear_predict(est) is None


def test_a_served_linear_model_scores_as_the_estimator_and_keeps_its_errors(tmp_path: Path) -> None:
    import pandas as pd

    X, y = load_iris(return_X_y=True, as_frame=True)
    est = LogisticRegression(max_iter=500).fit(X, y)
    gitml.sklearn.save_model(est, str(tmp_path / "m"), signature=gitml.models.infer_signature(X, y))
    model = load_model(str(tmp_path / "m"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shortcut itself warns about nothing
        got = model.predict_matrix(X.to_numpy(), tuple(X.columns))
    assert np.array_equal(got, est.predict(X))
    assert np.array_equal(model.predict(X), est.predict(X))
    bad = X.head(2).copy()
    bad.iloc[0, 0] = np.nan
    with pytest.raises(Exception, match="NaN"):
        model.predict(pd.DataFrame(bad))

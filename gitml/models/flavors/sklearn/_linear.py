"""A linear model's `predict` without scikit-learn's per-call input checks, used only where
it gives exactly the estimator's own answer.

scikit-learn 1.9 spends about 150 us checking a one-row input (array-API namespaces,
dataframe detection, feature names) before a product that takes 1 us: measured on the iris
logistic regression, 157 us for `predict` against 2.5 us for the same arithmetic. For a
served linear model that check is nearly all of a request's cost.

The shortcut applies to estimators whose `predict` is scikit-learn's linear one (the
`LinearClassifierMixin` or `LinearModel` method, or an override that only hands dense
input on to it: `LinearRegression`, `Ridge`, `Lasso`, `ElasticNet`, `LogisticRegression`,
`LinearSVC`, `SGDClassifier`, ...), on a float64 C-contiguous
2-D array of finite values with the fitted number of columns; every other input goes to
the estimator. When the model is loaded, the shortcut and the estimator score the same
random rows, and the shortcut is kept only if every answer and its dtype are identical, so
a scikit-learn release that changes the arithmetic turns it off rather than changing a
prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["linear_predict"]

# a 2-D array -> the estimator's predictions, or None for input the shortcut does not take
Predict = Callable[[Any], Any]


def linear_predict(model: Any) -> Predict | None:
    """`predict` for a fitted linear estimator as plain numpy, or None where that is not
    certain to give the estimator's answer (see the module's docstring)."""
    try:
        import numpy as np
        import sklearn
        from sklearn.linear_model import ElasticNet, Ridge
        from sklearn.linear_model._base import (
            LinearClassifierMixin,
            LinearModel,
            MultiOutputLinearModel,
        )
    except ImportError:  # pragma: no cover - the flavor needs scikit-learn (or moved these)
        return None
    if sklearn.get_config().get("array_api_dispatch"):
        return None
    cls = type(model)
    # scikit-learn's linear methods, and the overrides that only hand dense input to them
    regressor_predict = {LinearModel.predict, MultiOutputLinearModel.predict, Ridge.predict}
    regressor_scores = {LinearModel._decision_function, ElasticNet._decision_function}
    if (
        cls.predict is LinearClassifierMixin.predict
        and cls.decision_function is LinearClassifierMixin.decision_function
    ):
        fast = _classifier(model, np)
    elif (
        cls.predict in regressor_predict
        and getattr(cls, "_decision_function", None) in regressor_scores
    ):
        fast = _regressor(model, np)
    else:
        return None
    if fast is None or not _agrees(model, fast, np):
        return None
    return fast


def _weights(model: Any, np: Any) -> tuple[Any, Any, int] | None:
    """The coefficients as the product takes them, the intercept and the fitted width."""
    coef = getattr(model, "coef_", None)
    intercept = getattr(model, "intercept_", None)
    if not isinstance(coef, np.ndarray) or coef.dtype.kind != "f" or coef.ndim not in (1, 2):
        return None  # sparse or unusual coefficients: the estimator's own path
    if not isinstance(intercept, np.ndarray | float | int):
        return None
    return (coef.T if coef.ndim == 2 else coef), intercept, coef.shape[-1]


def _classifier(model: Any, np: Any) -> Predict | None:
    weights = _weights(model, np)
    classes = getattr(model, "classes_", None)
    if weights is None or not isinstance(classes, np.ndarray) or classes.dtype.kind == "O":
        return None
    coef_t, intercept, width = weights

    def predict(x: Any) -> Any:
        if not _plain(x, width, np):
            return None
        scores = x @ coef_t + intercept
        if scores.ndim > 1 and scores.shape[1] == 1:
            scores = scores.reshape(-1)
        indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        return classes.take(indices, axis=0)

    return predict


def _regressor(model: Any, np: Any) -> Predict | None:
    weights = _weights(model, np)
    if weights is None:
        return None
    coef_t, intercept, width = weights

    def predict(x: Any) -> Any:
        if not _plain(x, width, np):
            return None
        return x @ coef_t + intercept

    return predict


def _plain(x: Any, width: int, np: Any) -> bool:
    # exactly what scikit-learn's checks would pass through unchanged (non-finite values
    # go to the estimator, which raises its own error for them)
    return (
        type(x) is np.ndarray
        and x.dtype == np.float64
        and x.ndim == 2
        and x.shape[1] == width
        and x.shape[0] > 0
        and x.flags.c_contiguous
        and bool(np.isfinite(x).all())
    )


def _agrees(model: Any, fast: Predict, np: Any) -> bool:
    """The shortcut and the estimator give identical answers on random rows of each size the
    server sends (one row, a few, many)."""
    import warnings

    width = int(getattr(model, "n_features_in_", 0) or 0)
    if width <= 0:
        return False
    rng = np.random.default_rng(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "X does not have valid feature names"
            for rows in (1, 3, 64):
                x = rng.standard_normal((rows, width)) * 10.0
                want, got = model.predict(x), fast(x)
                if (
                    type(want) is not type(got)
                    or want.dtype != got.dtype
                    or want.shape != got.shape
                ):
                    return False
                if not np.array_equal(want, got):
                    return False
    except Exception:  # the estimator refuses random rows: keep to its own path
        return False
    return True

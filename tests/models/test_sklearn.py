"""scikit-learn flavor: estimators and pipelines in skops format, with an allow-list on load."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import gitml.pyfunc
import gitml.sklearn
from gitml.exceptions import InvalidParameterValue, MissingDependency
from gitml.models import ColSpec, Schema
from tests.models.skfuncs import double

Evil = tuple[Callable[[Path], None], Path]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((60, 3)), columns=["a", "b", "c"])
    return frame, (frame["a"] + frame["b"] > 1).astype(int)


@pytest.fixture(scope="module")
def logreg(data: tuple[pd.DataFrame, pd.Series]) -> LogisticRegression:
    return LogisticRegression().fit(*data)


def test_logistic_regression_round_trip(tmp_path: Path, data: tuple[pd.DataFrame, pd.Series], logreg: LogisticRegression) -> None:
    X, _ = data
    meta = gitml.sklearn.save_model(logreg, tmp_path / "m", input_example=X.head(3))
    assert meta.signature is not None
    assert meta.signature.inputs == Schema([ColSpec("double", c) for c in "abc"])
    loaded = gitml.sklearn.load_model(tmp_path / "m")
    assert np.array_equal(loaded.predict_proba(X), logreg.predict_proba(X))
    model = gitml.pyfunc.load_model(tmp_path / "m")
    assert np.array_equal(model.predict(X), logreg.predict(X))
    # dicts, records and lists reach the estimator as the same table
    assert np.array_equal(model.predict(X.to_dict(orient="list")), logreg.predict(X))
    assert np.array_equal(model.predict(X.to_dict(orient="records")), logreg.predict(X))
    assert np.array_equal(model.predict(X.to_numpy().tolist()), logreg.predict(X))
    assert not list((tmp_path / "m").glob("*.pkl"))


def test_pipeline_round_trip_with_predict_proba(tmp_path: Path, data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    pipe = Pipeline([("scale", StandardScaler()), ("abs", FunctionTransformer(np.abs)), ("lr", LogisticRegression())]).fit(X.to_numpy(), y)
    gitml.sklearn.save_model(pipe, tmp_path / "m", input_example=X.to_numpy()[:2], pyfunc_predict_fn="predict_proba")
    model = gitml.pyfunc.load_model(tmp_path / "m")
    assert np.array_equal(model.predict(X.to_numpy()), pipe.predict_proba(X.to_numpy()))
    info = model.metadata.get_model_info()
    assert info.flavors["python_function"]["predict_fn"] == "predict_proba"
    assert info.flavors["sklearn"]["serialization_format"] == "skops"


def test_wrong_columns_are_named(tmp_path: Path, data: tuple[pd.DataFrame, pd.Series], logreg: LogisticRegression) -> None:
    X, _ = data
    gitml.sklearn.save_model(logreg, tmp_path / "m", input_example=X.head(2))
    model = gitml.pyfunc.load_model(tmp_path / "m")
    with pytest.raises(InvalidParameterValue, match=r"missing required column\(s\) \['c'\]"):
        model.predict(X[["a", "b"]])
    with pytest.raises(InvalidParameterValue, match="column 'a'"):
        model.predict(X.assign(a="text"))


def test_untrusted_types_are_refused_until_trusted(tmp_path: Path, data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    pipe = Pipeline([("f", FunctionTransformer(double)), ("lr", LogisticRegression())]).fit(X, y)
    gitml.sklearn.save_model(pipe, tmp_path / "m")
    # tests/ is not installed: the function ships as extracted source, named there
    with pytest.raises(InvalidParameterValue, match=r"outside the allow-list: \['gitml_src_skfuncs.double'\]"):
        gitml.sklearn.load_model(tmp_path / "m")
    with pytest.raises(InvalidParameterValue, match="allow-list"):
        gitml.pyfunc.load_model(tmp_path / "m")
    with pytest.raises(InvalidParameterValue, match="allow-list"):
        gitml.sklearn.load_model(tmp_path / "m", trusted=["something.else"])
    by_name = gitml.sklearn.load_model(tmp_path / "m", trusted=["gitml_src_skfuncs.double"])
    assert np.array_equal(by_name.predict(X), pipe.predict(X))
    model = gitml.pyfunc.load_model(tmp_path / "m", trusted=True)
    assert np.array_equal(model.predict(X), pipe.predict(X))


def test_malicious_pickle_is_refused(tmp_path: Path, logreg: LogisticRegression, evil: Evil) -> None:
    plant, marker = evil
    gitml.sklearn.save_model(logreg, tmp_path / "m")
    plant(tmp_path / "m" / "model.skops")
    for trusted in (None, True):
        with pytest.raises(InvalidParameterValue, match="not a valid skops file"):
            gitml.sklearn.load_model(tmp_path / "m", trusted=trusted)
    with pytest.raises(InvalidParameterValue, match="not a valid skops file"):
        gitml.pyfunc.load_model(tmp_path / "m")
    assert not marker.exists()


def test_pickle_format_is_not_loaded(tmp_path: Path, logreg: LogisticRegression, evil: Evil) -> None:
    import yaml

    plant, marker = evil
    gitml.sklearn.save_model(logreg, tmp_path / "m")
    plant(tmp_path / "m" / "model.pkl")
    data = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    data["flavors"]["sklearn"].update(serialization_format="cloudpickle", model_file="model.pkl")
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(data))
    with pytest.raises(InvalidParameterValue, match="gitml loads only skops files"):
        gitml.sklearn.load_model(tmp_path / "m")
    assert not marker.exists()


def test_not_an_estimator(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterValue, match="has no predict method"):
        gitml.sklearn.save_model(object(), tmp_path / "m")


def test_missing_skops_names_the_extra(tmp_path: Path, logreg: LogisticRegression, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(MissingDependency, match=r"gitml\[sklearn\]"):
        gitml.sklearn.save_model(logreg, tmp_path / "m")


def test_frame_with_the_fitted_columns_scores_like_the_estimator(tmp_path: Path) -> None:
    import warnings

    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import gitml.pyfunc
    import gitml.sklearn

    X, y = load_iris(return_X_y=True, as_frame=True)
    est = LogisticRegression(max_iter=500).fit(X, y)
    gitml.sklearn.save_model(est, tmp_path / "m")
    model = gitml.pyfunc.load_model(str(tmp_path / "m"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fast path must not leak sklearn's feature-name warning
        got = model.predict(X)
    assert (got == est.predict(X)).all()
    # another column order takes scikit-learn's own checks, which refuse it, as they would
    from gitml.exceptions import InvalidParameterValue

    with pytest.raises(InvalidParameterValue, match="feature names"):
        model.predict(pd.DataFrame(X[list(reversed(X.columns))]))


def test_matrix_path_answers_like_the_frame_path(tmp_path: Path, data: tuple[pd.DataFrame, pd.Series], logreg: LogisticRegression) -> None:
    X, _ = data
    gitml.sklearn.save_model(logreg, tmp_path / "m", input_example=X.head(3), pyfunc_predict_fn="predict_proba")
    model = gitml.pyfunc.load_model(tmp_path / "m")
    want = model.predict(X)
    # the signature's columns in order: the array goes straight to the estimator
    assert np.array_equal(model.predict_matrix(X.to_numpy(), ("a", "b", "c")), want)
    # integers where doubles are expected are cast, as the frame path casts them
    ints = np.ones((2, 3), dtype=np.int64)
    assert np.array_equal(model.predict_matrix(ints, ("a", "b", "c")), model.predict(pd.DataFrame(ints, columns=list("abc"))))
    # another order or an extra column takes the DataFrame path: reordered, extras dropped
    reordered = X[["c", "a", "b"]]
    assert np.array_equal(model.predict_matrix(reordered.to_numpy(), ("c", "a", "b")), want)
    extra = X.assign(d=1.0)
    assert np.array_equal(model.predict_matrix(extra.to_numpy(), ("a", "b", "c", "d")), want)
    with pytest.raises(InvalidParameterValue, match=r"missing required column\(s\) \['c'\]"):
        model.predict_matrix(X[["a", "b"]].to_numpy(), ("a", "b"))


def test_matrix_path_refuses_lossy_casts_like_the_frame_path(tmp_path: Path) -> None:
    X = pd.DataFrame({"a": [1, 2, 3, 4], "b": [0, 1, 0, 1]})
    est = LogisticRegression().fit(X, [0, 1, 0, 1])
    gitml.sklearn.save_model(est, tmp_path / "m", input_example=X.head(2))
    model = gitml.pyfunc.load_model(tmp_path / "m")
    assert model.metadata.signature.inputs == Schema([ColSpec("long", "a"), ColSpec("long", "b")])
    assert list(model.predict_matrix(X.to_numpy(), ("a", "b"))) == list(est.predict(X))
    floats = np.array([[1.5, 0.0]])
    with pytest.raises(InvalidParameterValue, match="float64 cannot be safely converted to long") as fast:
        model.predict_matrix(floats, ("a", "b"))
    with pytest.raises(InvalidParameterValue, match="float64 cannot be safely converted to long") as slow:
        model.predict(pd.DataFrame(floats, columns=["a", "b"]))
    assert str(fast.value) == str(slow.value)


def test_reading_a_model_does_not_import_torch(tmp_path: Path, logreg: LogisticRegression, data: tuple[pd.DataFrame, pd.Series]) -> None:
    # skops's type scan would import torch through scikit-learn's array-API shim: 2 s, 180 MiB
    import subprocess

    X, _ = data
    gitml.sklearn.save_model(logreg, tmp_path / "m", input_example=X.head(3))
    script = (
        "import sys, gitml.pyfunc, numpy as np\n"
        f"m = gitml.pyfunc.load_model({str(tmp_path / 'm')!r})\n"
        "print(m.predict_matrix(np.zeros((1, 3)), ('a', 'b', 'c')).tolist())\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[0]", "False"]
    # the shim still imports afterwards, for anyone who wants scikit-learn's array API
    script += "import sklearn.externals.array_api_compat.torch\nprint('torch' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[0]", "False", "True"]


def test_estimators_gitml_saved_load_by_default(tmp_path: Path, data: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import PolynomialFeatures

    X, y = data
    models = {
        "knn": KNeighborsClassifier(3),
        "pipe": Pipeline(
            [("scale", StandardScaler()), ("poly", PolynomialFeatures(2)), ("pca", PCA(3)), ("knn", KNeighborsClassifier())]
        ),
        "forest": RandomForestClassifier(4, random_state=0),
    }
    for name, model in models.items():
        model.fit(X, y)
        gitml.sklearn.save_model(model, tmp_path / name)
        assert np.array_equal(gitml.sklearn.load_model(tmp_path / name).predict(X), model.predict(X))
        assert np.array_equal(gitml.pyfunc.load_model(tmp_path / name).predict(X), model.predict(X))


@pytest.mark.parametrize(
    ("name", "trusted"),
    [
        ("sklearn.neighbors._kd_tree.KDTree", True),
        ("sklearn.tree._tree.Tree", True),
        ("numpy.memmap", False),
        ("numpy.load", False),  # a function: never by default
        ("numpy.lib.npyio.NpzFile", False),
        ("scipy.io.FortranFile", False),
        ("sklearn.datasets.fetch_openml", False),
        ("os.system", False),
        ("builtins.eval", False),
        ("sklearnx.Evil", False),
        ("sklearn..Bad", False),
    ],
)
def test_default_trust_is_classes_of_sklearn_numpy_scipy(name: str, trusted: bool) -> None:
    from gitml.models.flavors.sklearn.flavor import trusted_by_default

    assert trusted_by_default(name) is trusted


def test_script_defined_estimator_ships_as_source(
    tmp_path: Path, data: tuple[pd.DataFrame, pd.Series], monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    source = (
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "FACTOR = 3\n"
        "print('training side effect')\n"
        "class Times(TransformerMixin, BaseEstimator):\n"
        "    def __init__(self, k=FACTOR):\n"
        "        self.k = k\n"
        "    def fit(self, X, y=None):\n"
        "        return self\n"
        "    def transform(self, X):\n"
        "        return X * self.k\n"
    )
    file = tmp_path / "script.py"
    file.write_text(source)
    script = types.ModuleType("__main__")
    script.__file__ = str(file)
    monkeypatch.setitem(sys.modules, "__main__", script)  # as `python script.py` runs it
    namespace = script.__dict__
    exec(compile(source, str(file), "exec"), namespace)
    X, y = data
    pipe = Pipeline([("t", namespace["Times"]()), ("lr", LogisticRegression())]).fit(X, y)  # type: ignore[operator]
    gitml.sklearn.save_model(pipe, tmp_path / "m")
    text = (tmp_path / "m" / "code" / "gitml_src_script.py").read_text()
    assert "class Times" in text and "FACTOR = 3" in text and "print(" not in text
    with pytest.raises(InvalidParameterValue, match=r"\['gitml_src_script.Times'\]"):
        gitml.sklearn.load_model(tmp_path / "m")
    loaded = gitml.sklearn.load_model(tmp_path / "m", trusted=["gitml_src_script.Times"])
    assert np.array_equal(loaded.predict(X), pipe.predict(X))

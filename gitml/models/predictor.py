"""The generic model (pyfunc): load any flavor by URI and predict with inputs checked against the signature."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from gitml.exceptions import InvalidParameterValue
from gitml.models.enforcement import enforce_matrix, enforce_schema
from gitml.models.flavors import by_loader_module, flavors
from gitml.models.model import PYFUNC_FLAVOR, Model
from gitml.models.params import enforce_params
from gitml.models.shipping import keeps_code
from gitml.models.uri import temporary_model_dir

__all__ = ["PyFuncModel", "load_flavor_conf", "load_model"]


class _Predictor(Protocol):
    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any: ...


class PyFuncModel:
    """A loaded model of any flavor behind one `predict`; `metadata` is its MLmodel."""

    def __init__(self, model_meta: Model, model_impl: _Predictor, model_dir: Path | None) -> None:
        self._meta = model_meta
        self._impl = model_impl
        # None when the model was downloaded only to be loaded (its copy is gone).
        self.model_dir = model_dir

    @property
    def metadata(self) -> Model:
        """The MLmodel of this model (`metadata.get_model_info()`, `metadata.signature`, ...)."""
        return self._meta

    @property
    def loader_module(self) -> str:
        """The flavor module that loaded the model."""
        return str(self._meta.flavors[PYFUNC_FLAVOR]["loader_module"])

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Score `data` (numpy array, DataFrame, list or dict); inputs are checked against the
        signature first, with safe casts, and a wrong input raises InvalidParameterValue.
        `params` are checked against the signature's params: cast, defaults filled in,
        unknown names dropped with a warning."""
        schema = self._meta.get_input_schema()
        if schema is not None:
            data = enforce_schema(data, schema)
        return self._impl.predict(data, self._params(params))

    def _params(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        return enforce_params(params, self._meta.get_params_schema())

    def predict_matrix(
        self, values: Any, columns: Sequence[str], params: dict[str, Any] | None = None
    ) -> Any:
        """`predict` of a table given as a numeric 2-D array and its column names, as the
        scoring server parses it: the same answer as `predict(DataFrame(values, columns))`,
        without the DataFrame where the signature and the flavor allow it."""
        schema = self._meta.get_input_schema()
        fast = getattr(self._impl, "predict_matrix", None)
        if fast is not None and (schema is None or not schema.is_tensor_spec()):
            checked = values if schema is None else enforce_matrix(values, columns, schema)
            if checked is not None:
                out = fast(checked, columns, self._params(params))
                if out is not NotImplemented:
                    return out
        try:
            import pandas as pd
        except ImportError:  # without pandas a table is scored as its array
            return self.predict(values, params)
        return self.predict(pd.DataFrame(values, columns=list(columns)), params)

    def unwrap_python_model(self) -> Any:
        """The PythonModel instance behind a pyfunc-flavored model."""
        inner = getattr(self._impl, "python_model", None)
        if inner is None:
            raise InvalidParameterValue("this model was not saved from a PythonModel")
        return inner

    def get_raw_model(self) -> Any:
        """The flavor's own object (nn.Module, estimator, PythonModel)."""
        return getattr(self._impl, "raw_model", self._impl)

    def __repr__(self) -> str:
        return f"PyFuncModel(loader_module={self.loader_module!r}, model_uuid={self._meta.model_uuid!r})"


def load_flavor_conf(model_meta: Model, flavor: str) -> dict[str, Any]:
    """The flavor's section of the MLmodel, or a clear error listing the flavors it has."""
    conf = model_meta.flavors.get(flavor)
    if not isinstance(conf, dict):
        raise InvalidParameterValue(
            f"the model has no {flavor!r} flavor (it has: {', '.join(sorted(model_meta.flavors))})"
        )
    return conf


def load_model(
    model_uri: str | Path, dst_path: str | Path | None = None, **options: Any
) -> PyFuncModel:
    """Load any gitml model (local path, runs:/, models:/) as a PyFuncModel.

    `options` go to the flavor's loader (e.g. `device=` for PyTorch, `trusted=` for
    scikit-learn, `allow_pickle=` for pickled PythonModels).
    """
    with temporary_model_dir(model_uri, dst_path) as (local, keep):
        meta = Model.load(local)
        conf = load_flavor_conf(meta, PYFUNC_FLAVOR)
        loader = conf.get("loader_module")
        # The registry is the allow-list: a model file never chooses which code runs.
        spec = by_loader_module(str(loader))
        if spec is None:
            known = sorted(s.loader_module for s in flavors())
            raise InvalidParameterValue(f"unknown model flavor loader {loader!r}: gitml loads {known} only")
        impl = importlib.import_module(spec.implementation).load_pyfunc(local, meta, **options)
        # A PythonModel may read its artifacts at predict time, and shipped code may import
        # more of itself later: keep those files.
        if spec.name == PYFUNC_FLAVOR or keeps_code(local, conf.get("code")):
            keep[0] = True
        return PyFuncModel(meta, impl, local if keep[0] else None)

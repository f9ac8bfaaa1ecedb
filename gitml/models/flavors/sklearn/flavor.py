"""The scikit-learn flavor: estimators and pipelines in skops format, loaded against a type allow-list."""

from __future__ import annotations

import importlib
import importlib.abc
import inspect
import json
import sys
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gitml.exceptions import CorruptMetadata, GitMLError, InvalidParameterValue
from gitml.models.flavors.sklearn import SPEC
from gitml.models.flavors.sklearn._linear import linear_predict
from gitml.models.folder import (
    copy_code_paths,
    finish_model,
    mlflow_keywords,
    new_model_dir,
    require,
)
from gitml.models.model import PYFUNC_FLAVOR, Model
from gitml.models.shipping import keeps_code, model_code, ship_objects
from gitml.models.signature import ModelSignature, infer_signature
from gitml.models.source import needs_source

__all__ = ["FLAVOR_NAME", "load_model", "load_pyfunc", "load_skops", "save_model", "trusted_by_default"]

FLAVOR_NAME = SPEC.name
LOADER_MODULE = SPEC.loader_module
_MODEL_FILE = "model.skops"
_PREDICT_FNS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")

# `trusted`: None -> skops's own allow-list only; True -> also every type the file names;
# a list -> also those type names.
Trusted = bool | Sequence[str] | None


# scikit-learn's vendored array-API shim for torch: it imports torch.
_TORCH_SHIM = "sklearn.externals.array_api_compat.torch"


class _RefuseModule(importlib.abc.MetaPathFinder):
    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == self.name:
            raise ImportError(f"{fullname} is not needed to read skops files")
        return None


def _skops_io() -> Any:
    # skops builds its allow-list of types at import by importing every scikit-learn module
    # (pkgutil.walk_packages). The walk also imports the array-API shim for torch, which
    # imports torch: about 2 s and 180 MiB that reading an estimator never uses (a scoring
    # server of a logistic regression went from 367 to 184 MiB without it). Unless torch is
    # loaded already, that one module is refused while skops.io is first imported; the walk
    # skips modules that fail to import, and a later import of the shim works as usual.
    if "skops.io" in sys.modules or "torch" in sys.modules:
        return require("skops.io", "sklearn")
    finder = _RefuseModule(_TORCH_SHIM)
    sys.meta_path.insert(0, finder)
    try:
        return require("skops.io", "sklearn")
    finally:
        sys.meta_path.remove(finder)


def _ship_custom_types(
    sio: Any, file: Path, model_dir: Path, code: str | None, code_paths: Sequence[str | Path] | None
) -> str | None:
    """Classes and functions of the user's script or repository named in the skops file are
    shipped as extracted source, and the file is made to name them there (they still need
    `trusted=` to load, as any type outside the default allow-list)."""
    found: list[tuple[str, str, Any]] = []
    for name in sio.get_untrusted_types(file=file):
        module, _, attr = name.rpartition(".")
        obj = getattr(sys.modules.get(module), attr, None)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and needs_source(obj, code_paths):
            found.append((module, attr, obj))
    if not found:
        return code
    shipped = ship_objects([o for _, _, o in found], model_dir, code, code_paths, "a scikit-learn model")
    moved = {
        (module, attr): ref.split(":", 1)[0] for (module, attr, _), ref in zip(found, shipped.refs, strict=True)
    }

    def rename(node: Any) -> None:
        if isinstance(node, dict):
            key = (node.get("__module__"), node.get("__class__"))
            if key in moved:
                node["__module__"] = moved[key]  # type: ignore[index]
            for value in node.values():
                rename(value)
        elif isinstance(node, list):
            for value in node:
                rename(value)

    with zipfile.ZipFile(file) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    schema = json.loads(members["schema.json"])
    rename(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return shipped.code


def save_model(
    sk_model: Any,
    path: str | Path,
    code_paths: Sequence[str | Path] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pyfunc_predict_fn: str = "predict",
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    mlflow_model: Model | None = None,
    code_path: Sequence[str | Path] | None = None,
    conda_env: Any = None,
) -> Model:
    """Save a fitted estimator or pipeline as `model.skops` (no pickle) in a model folder."""
    code_paths, pip_requirements = mlflow_keywords(
        code_paths, code_path, conda_env, pip_requirements, extra_pip_requirements
    )
    sio = _skops_io()
    if pyfunc_predict_fn not in _PREDICT_FNS:
        raise InvalidParameterValue(f"pyfunc_predict_fn must be one of {_PREDICT_FNS}")
    if not callable(getattr(sk_model, pyfunc_predict_fn, None)):
        raise InvalidParameterValue(f"{type(sk_model).__name__} has no {pyfunc_predict_fn} method")
    with new_model_dir(path) as model_dir:
        meta = mlflow_model or Model()
        code = copy_code_paths(code_paths, model_dir)
        try:
            sio.dump(sk_model, model_dir / _MODEL_FILE)
        except Exception as e:  # skops refuses objects it cannot represent safely
            raise InvalidParameterValue(f"skops cannot save {type(sk_model).__name__}: {e}") from e
        code = _ship_custom_types(sio, model_dir / _MODEL_FILE, model_dir, code, code_paths)
        sklearn = require("sklearn", "sklearn")
        meta.add_flavor(
            FLAVOR_NAME,
            pickled_model=None,
            sklearn_version=str(sklearn.__version__),
            serialization_format="skops",
            model_file=_MODEL_FILE,
            code=code,
        )
        meta.add_flavor(
            PYFUNC_FLAVOR,
            loader_module=LOADER_MODULE,
            data=_MODEL_FILE,
            code=code,
            predict_fn=pyfunc_predict_fn,
        )
        if signature is None and input_example is not None:
            try:
                output = getattr(sk_model, pyfunc_predict_fn)(input_example)
            except Exception:  # an example the model cannot score still documents the input
                output = None
            signature = infer_signature(input_example, output)
        finish_model(
            meta,
            model_dir,
            signature=signature,
            input_example=input_example,
            metadata=metadata,
            requirements=["scikit-learn", "skops", "numpy"],
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
        )
    return meta


# Types skops leaves out of its allow-list but scikit-learn itself writes (KDTree, Tree, distance
# metrics...): trusted when they are classes of scikit-learn, numpy or scipy. Never these
# corners, whose classes read or write files when built (numpy.memmap) or exist for tests.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")
_NEVER = (
    "numpy.memmap", "numpy.lib.", "numpy.f2py", "numpy.distutils", "numpy.testing", "numpy.ctypeslib",
    "numpy.core.memmap", "numpy._core.memmap", "scipy.io", "scipy._lib", "scipy.datasets",
    "sklearn.externals", "sklearn.utils._testing", "sklearn.datasets",
)  # fmt: skip


def trusted_by_default(name: str) -> bool:
    """Whether a type a skops file names is trusted without `trusted=`: a class (not a function)
    defined by scikit-learn, numpy or scipy, outside the corners listed in `_NEVER`."""
    if not name.startswith(_TRUSTED_PREFIXES) or name.startswith(_NEVER) or len(name) > 300:
        return False
    module_name, _, attr = name.rpartition(".")
    if not all(part.isidentifier() for part in name.split(".")):
        return False
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except Exception:  # not importable: skops will refuse it on its own
        return False
    if not inspect.isclass(obj) or not str(getattr(obj, "__module__", "")).startswith(_TRUSTED_PREFIXES):
        return False
    np = sys.modules.get("numpy")
    return not (np is not None and issubclass(obj, np.memmap))


def _load(model_dir: Path, meta: Model, trusted: Trusted = None) -> Any:
    from gitml.models.predictor import load_flavor_conf

    conf = load_flavor_conf(meta, FLAVOR_NAME)
    if conf.get("serialization_format", "skops") != "skops":
        raise InvalidParameterValue(
            f"this model is stored as {conf.get('serialization_format')!r}; gitml loads only skops "
            "files, which cannot run code when read"
        )
    rel = str(conf.get("model_file") or _MODEL_FILE)
    file = (model_dir / rel).resolve()
    if not file.is_relative_to(model_dir.resolve()) or not file.is_file():
        raise CorruptMetadata(f"model file {rel!r} is missing or outside the model folder")
    with model_code(model_dir, conf.get("code")):
        return load_skops(file, trusted, rel)


def load_skops(file: Path, trusted: Trusted = None, rel: str | None = None) -> Any:
    """Read a skops file: types outside skops's allow-list and `trusted_by_default` are refused
    unless `trusted` names them (or is True)."""
    sio = _skops_io()
    rel = rel or file.name
    try:
        untrusted = sio.get_untrusted_types(file=file)
    except Exception as e:  # not a skops zip: a pickle, a truncated file...
        raise InvalidParameterValue(f"refusing to load {rel}: not a valid skops file ({e})") from e
    if trusted is True:
        allowed = list(untrusted)
    elif trusted:
        allowed = [str(t) for t in trusted]
    else:
        allowed = []
    allowed += [t for t in untrusted if t not in allowed and trusted_by_default(t)]
    refused = sorted(set(untrusted) - set(allowed))
    if refused:
        raise InvalidParameterValue(
            f"refusing to load {rel}: it names types outside the allow-list: {refused}. "
            "If you trust this model, pass trusted=[...those names...] (or trusted=True)"
        )
    try:
        return sio.load(file, trusted=allowed or None)
    except GitMLError:
        raise
    except Exception as e:
        raise InvalidParameterValue(f"cannot load {rel}: {e}") from e


def load_model(model_uri: str | Path, dst_path: str | Path | None = None, trusted: Trusted = None) -> Any:
    """Load the estimator; types outside skops's allow-list and outside scikit-learn's, numpy's
    and scipy's own classes are refused unless `trusted` names them (or is True, to trust every
    type the file names)."""
    from gitml.models.uri import temporary_model_dir

    with temporary_model_dir(model_uri, dst_path) as (local, keep):
        meta = Model.load(local)
        # Shipped code stays importable (a module may import more of it later).
        keep[0] = keep[0] or keeps_code(local, meta.flavors.get(FLAVOR_NAME, {}).get("code"))
        return _load(local, meta, trusted)


class _SklearnPredictor:
    """The pyfunc face of an estimator: calls the predict function chosen at save time."""

    def __init__(self, model: Any, predict_fn: str) -> None:
        self.raw_model = model
        self._fn = getattr(model, predict_fn)
        # a linear model's own answer without scikit-learn's per-call input checks
        self._linear = linear_predict(model) if predict_fn == "predict" else None
        names = getattr(model, "feature_names_in_", None)
        self._features = [str(n) for n in names] if names is not None else None

    def _as_array(self, data: Any) -> Any:
        # A numeric frame whose columns are exactly the fitted features, in order, scores the
        # same as its array; scikit-learn's per-call DataFrame checks cost more than the model.
        if self._features is None or getattr(data, "columns", None) is None:
            return None
        if list(map(str, data.columns)) != self._features:
            return None
        kinds = {dt.kind for dt in data.dtypes}
        if not kinds <= {"f", "i", "u"}:
            return None
        return data.to_numpy()

    def predict_matrix(
        self, values: Any, columns: Sequence[str], params: dict[str, Any] | None = None
    ) -> Any:
        """Score a numeric array whose columns are the fitted features in order (see
        `PyFuncModel.predict_matrix`); NotImplemented for any other columns."""
        if self._features is not None and list(columns) != self._features:
            return NotImplemented
        if self._linear is not None:
            out = self._linear(values)
            if out is not None:
                return out
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return self._score(values)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        if isinstance(data, list):
            np = require("numpy", "sklearn")
            data = np.asarray(data)
        array = self._as_array(data)
        if array is not None:
            return self.predict_matrix(array, self._features or ())
        return self._score(data)

    def _score(self, data: Any) -> Any:
        try:
            return self._fn(data)
        except (ValueError, TypeError, KeyError) as e:
            raise InvalidParameterValue(f"the model could not score this input: {e}") from e


def load_pyfunc(model_dir: Path, meta: Model, trusted: Trusted = None, **_: Any) -> _SklearnPredictor:
    """The pyfunc loader of this flavor."""
    fn = str(meta.flavors[PYFUNC_FLAVOR].get("predict_fn") or "predict")
    if fn not in _PREDICT_FNS:
        raise CorruptMetadata(f"unknown predict_fn {fn!r}")
    return _SklearnPredictor(_load(model_dir, meta, trusted), fn)

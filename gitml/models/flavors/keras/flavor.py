"""The Keras 3 flavor: the model in Keras's own `.keras` format, loaded with `safe_mode=True`
(Lambda layers and other code-carrying objects refused unless trusted). Keras runs on the
PyTorch backend unless `KERAS_BACKEND` names another (TensorFlow or JAX: the user's choice)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gitml.config import ensure_keras_backend
from gitml.exceptions import CorruptMetadata, GitMLError, InvalidParameterValue
from gitml.models.flavors.keras import SPEC
from gitml.models.folder import (
    copy_code_paths,
    finish_model,
    mlflow_keywords,
    new_model_dir,
    require,
)
from gitml.models.model import PYFUNC_FLAVOR, Model
from gitml.models.shipping import keeps_code, model_code
from gitml.models.signature import ModelSignature, infer_signature

__all__ = ["FLAVOR_NAME", "load_model", "load_pyfunc", "save_model"]

FLAVOR_NAME = SPEC.name
LOADER_MODULE = SPEC.loader_module
_DATA_DIR = "data"
_MODEL_FILE = "data/model.keras"
_BACKEND_PACKAGES = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}

# At import of `gitml.keras`, so that a script's own `import keras` after it finds the backend.
ensure_keras_backend()


def _keras() -> Any:
    ensure_keras_backend()
    return require("keras", "keras")


def _predict(model: Any, data: Any) -> Any:
    return model.predict(data, verbose=0)


def save_model(
    keras_model: Any,
    path: str | Path,
    code_paths: Sequence[str | Path] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    mlflow_model: Model | None = None,
    code_path: Sequence[str | Path] | None = None,
    conda_env: Any = None,
) -> Model:
    """Save a Keras 3 model (`keras.Model`) as `data/model.keras` in a model folder."""
    code_paths, pip_requirements = mlflow_keywords(
        code_paths, code_path, conda_env, pip_requirements, extra_pip_requirements
    )
    keras = _keras()
    if not isinstance(keras_model, keras.Model):
        raise InvalidParameterValue(f"keras_model must be a keras.Model, not {type(keras_model).__name__}")
    with new_model_dir(path) as model_dir:
        meta = mlflow_model or Model()
        code = copy_code_paths(code_paths, model_dir)
        (model_dir / _DATA_DIR).mkdir()
        try:
            keras_model.save(model_dir / _MODEL_FILE)
        except Exception as e:  # an unbuilt model, an object Keras cannot serialise
            raise InvalidParameterValue(f"Keras cannot save {type(keras_model).__name__}: {e}") from e
        if signature is None and input_example is not None:
            signature = infer_signature(input_example, _predict(keras_model, input_example))
        backend = str(keras.backend.backend())
        meta.add_flavor(
            FLAVOR_NAME,
            keras_version=str(keras.__version__),
            keras_backend=backend,
            save_format="keras",
            data=_MODEL_FILE,
            code=code,
        )
        meta.add_flavor(
            PYFUNC_FLAVOR,
            loader_module=LOADER_MODULE,
            data=_MODEL_FILE,
            code=code,
        )
        finish_model(
            meta,
            model_dir,
            signature=signature,
            input_example=input_example,
            metadata=metadata,
            requirements=["keras", _BACKEND_PACKAGES.get(backend, backend), "numpy"],
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
        )
    return meta


def _load(model_dir: Path, meta: Model, trusted: bool = False, compile: bool = True) -> Any:
    from gitml.models.predictor import load_flavor_conf

    keras = _keras()
    conf = load_flavor_conf(meta, FLAVOR_NAME)
    if conf.get("save_format", "keras") != "keras":
        raise InvalidParameterValue(f"gitml loads Keras's .keras format only, not {str(conf.get('save_format'))[:50]!r}")
    rel = str(conf.get("data") or _MODEL_FILE)
    file = (model_dir / rel).resolve()
    if not file.is_relative_to(model_dir.resolve()) or not file.is_file() or file.suffix != ".keras":
        raise CorruptMetadata(f"model file {rel!r} is missing, outside the model folder or not a .keras file")
    try:
        with model_code(model_dir, conf.get("code")):
            # safe_mode: Lambda layers (marshalled Python bytecode) and other code are refused
            return keras.saving.load_model(file, compile=compile, safe_mode=not trusted)
    except GitMLError:
        raise
    except Exception as e:
        if "safe_mode" in str(e) or "Lambda" in str(e):
            raise InvalidParameterValue(
                f"refusing to load {rel}: it holds code (a Lambda layer or a Python function), which "
                "would run when loaded. If you trust this model, pass trusted=True"
            ) from e
        raise InvalidParameterValue(f"cannot load {rel}: {e}") from e


def load_model(
    model_uri: str | Path, dst_path: str | Path | None = None, trusted: bool = False, compile: bool = True
) -> Any:
    """Load the Keras model (`safe_mode=True` unless `trusted`); `compile` as Keras's own."""
    from gitml.models.uri import temporary_model_dir

    with temporary_model_dir(model_uri, dst_path) as (local, keep):
        meta = Model.load(local)
        keep[0] = keep[0] or keeps_code(local, meta.flavors.get(FLAVOR_NAME, {}).get("code"))
        return _load(local, meta, trusted, compile)


class _KerasPredictor:
    """The pyfunc face of a Keras model: arrays (or a dict of arrays) in, numpy out."""

    def __init__(self, model: Any) -> None:
        self.raw_model = model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        np = require("numpy", "keras")
        if hasattr(data, "to_numpy"):
            data = data.to_numpy()
        elif isinstance(data, Mapping):
            data = {k: np.asarray(v) for k, v in data.items()}
        elif not isinstance(data, np.ndarray):
            data = np.asarray(data)
        if isinstance(data, np.ndarray) and data.dtype == object:
            raise InvalidParameterValue("input must be numeric, got objects or strings")
        try:
            return _predict(self.raw_model, data)
        except (ValueError, TypeError, RuntimeError) as e:
            raise InvalidParameterValue(f"the model could not score this input: {e}") from e


def load_pyfunc(model_dir: Path, meta: Model, trusted: bool = False, **_: Any) -> _KerasPredictor:
    """The pyfunc loader of this flavor."""
    return _KerasPredictor(_load(model_dir, meta, trusted, compile=False))

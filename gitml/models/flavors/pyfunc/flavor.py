"""The custom-code flavor: a PythonModel subclass stored by import path (pickles only on opt-in)."""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gitml.config import env_flag
from gitml.exceptions import CorruptMetadata, InvalidParameterValue
from gitml.models.code import ShippedCode
from gitml.models.dependencies import get_model_dependencies
from gitml.models.flavors.pyfunc import SPEC
from gitml.models.flavors.pyfunc._state import load_state, save_state
from gitml.models.folder import (
    copy_code_paths,
    finish_model,
    mlflow_keywords,
    new_model_dir,
)
from gitml.models.model import Model
from gitml.models.predictor import PyFuncModel, load_model
from gitml.models.shipping import model_code, ship_objects
from gitml.models.signature import ModelSignature, infer_signature

__all__ = [
    "ALLOW_PICKLE_ENV",
    "FLAVOR_NAME",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "get_model_dependencies",
    "load_model",
    "load_pyfunc",
    "save_model",
]

FLAVOR_NAME = SPEC.name
LOADER_MODULE = SPEC.loader_module
# Opting in to unpickling (as MLflow 3 gates pickles): a deliberate, visible setting.
ALLOW_PICKLE_ENV = "GITML_ALLOW_PICKLE"
_ARTIFACTS_DIR = "artifacts"
_PICKLE_FILE = "python_model.pkl"


class PythonModelContext:
    """What `load_context` receives: local paths of the model's artifacts, and its config."""

    def __init__(self, artifacts: dict[str, str], model_config: dict[str, Any] | None) -> None:
        self.artifacts = artifacts
        self.model_config = model_config or {}


class PythonModel:
    """Base class for custom models: override `predict` (and `load_context` to read artifacts).

    The class is stored by import path; instance attributes that are JSON values are saved
    with it and restored before `load_context` (anything else belongs in `artifacts=`).
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Called once after loading, with the model's artifacts; load heavy state here."""

    def predict(self, context: PythonModelContext | None, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Score `model_input` (already checked against the signature)."""
        raise NotImplementedError


def _takes_context(method: Any) -> bool:
    try:
        params = list(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return True
    return bool(params) and params[0] == "context"


class _PythonModelWrapper:
    """Adapts a PythonModel to the pyfunc predictor interface."""

    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.raw_model = python_model
        self.context = context
        self._with_context = _takes_context(python_model.predict)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        if self._with_context:
            return self.python_model.predict(self.context, data, params=params)
        return self.python_model.predict(data, params=params)


def _copy_artifacts(artifacts: Mapping[str, str | Path] | None, model_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, src in (artifacts or {}).items():
        if not name or "/" in name or name.startswith("."):
            raise InvalidParameterValue(f"invalid artifact name {name!r}")
        text = str(src)
        if "://" in text or text.startswith("runs:/"):
            from gitml.models.uri import resolve_model_uri

            source = resolve_model_uri(text)
        else:
            source = Path(text)
        if not source.exists():
            raise InvalidParameterValue(f"artifact {name!r}: {source} does not exist")
        dest = model_dir / _ARTIFACTS_DIR / name / source.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest)
        else:
            shutil.copy2(source, dest)
        out[name] = {"path": dest.relative_to(model_dir).as_posix()}
    return out


def save_model(
    path: str | Path,
    python_model: Any = None,
    artifacts: Mapping[str, str | Path] | None = None,
    code_paths: Sequence[str | Path] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    model_config: dict[str, Any] | None = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    serialization: str = "import",
    mlflow_model: Model | None = None,
    code_path: Sequence[str | Path] | None = None,
    conda_env: Any = None,
) -> Model:
    """Save a PythonModel (instance or class) with its artifacts as a model folder.

    `serialization="import"` (default) records the class as `module:qualname` plus its JSON
    attributes; `"pickle"` pickles the instance, which loaders refuse unless they opt in.
    """
    code_paths, pip_requirements = mlflow_keywords(
        code_paths, code_path, conda_env, pip_requirements, extra_pip_requirements
    )
    if python_model is None:
        raise InvalidParameterValue("python_model= is required (a PythonModel subclass or instance)")
    cls = python_model if inspect.isclass(python_model) else type(python_model)
    if not callable(getattr(cls, "predict", None)):
        raise InvalidParameterValue(f"{cls.__name__} has no predict method")
    if serialization not in ("import", "pickle"):
        raise InvalidParameterValue(f"serialization must be 'import' or 'pickle', not {serialization!r}")
    with new_model_dir(path) as model_dir:
        meta = mlflow_model or Model()
        code = copy_code_paths(code_paths, model_dir)
        conf: dict[str, Any] = {
            "loader_module": LOADER_MODULE,
            "code": code,
            "artifacts": _copy_artifacts(artifacts, model_dir),
        }
        if model_config:
            conf["model_config"] = model_config
        if serialization == "pickle":
            import pickle

            try:
                import cloudpickle  # type: ignore[import-not-found]

                data = cloudpickle.dumps(python_model)
            except ImportError:
                data = pickle.dumps(python_model)
            (model_dir / _PICKLE_FILE).write_bytes(data)
            conf["python_model_pickle"] = _PICKLE_FILE
        else:
            shipped = ship_objects([cls], model_dir, code, code_paths, "a PythonModel")
            conf["python_model"], conf["code"] = shipped.refs[0], shipped.code
            conf["python_model_is_class"] = inspect.isclass(python_model)
            if not inspect.isclass(python_model):
                state_conf, conf["code"] = save_state(python_model, model_dir, conf["code"], code_paths)
                conf.update(state_conf)
        meta.add_flavor(FLAVOR_NAME, **conf)
        if signature is None and input_example is not None:
            signature = infer_signature(input_example)
        finish_model(
            meta,
            model_dir,
            signature=signature,
            input_example=input_example,
            metadata=metadata,
            requirements=[],
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
        )
    return meta


def _pickle_allowed(allow_pickle: bool | None) -> bool:
    if allow_pickle is not None:
        return allow_pickle
    return env_flag(ALLOW_PICKLE_ENV)


def _inside(model_dir: Path, rel: str) -> Path:
    target = (model_dir / rel).resolve()
    if not target.is_relative_to(model_dir.resolve()):
        raise CorruptMetadata(f"model file {rel!r} points outside the model folder")
    return target


def load_pyfunc(
    model_dir: Path, meta: Model, allow_pickle: bool | None = None, trusted: Any = None, **_: Any
) -> _PythonModelWrapper:
    """Rebuild the PythonModel and call its `load_context` (the pyfunc loader of this flavor)."""
    conf = meta.flavors[FLAVOR_NAME]
    with model_code(model_dir, conf.get("code")) as code:
        return _load_python_model(model_dir, conf, code, allow_pickle, trusted)


def _load_python_model(
    model_dir: Path, conf: Mapping[str, Any], code: ShippedCode, allow_pickle: bool | None, trusted: Any = None
) -> _PythonModelWrapper:
    if conf.get("python_model_pickle"):
        if not _pickle_allowed(allow_pickle):
            raise InvalidParameterValue(
                "this model's PythonModel is a pickle, and unpickling runs code from the model "
                f"files: refusing. If you trust its source, pass allow_pickle=True or set "
                f"{ALLOW_PICKLE_ENV}=1"
            )
        import pickle

        data = _inside(model_dir, str(conf["python_model_pickle"])).read_bytes()
        python_model = pickle.loads(data)
    elif conf.get("python_model"):
        cls = code.import_object(str(conf["python_model"]))
        if not inspect.isclass(cls) or not callable(getattr(cls, "predict", None)):
            raise CorruptMetadata(f"{conf['python_model']} is not a model class")
        if conf.get("python_model_is_class") or not (
            conf.get("python_model_state") or conf.get("python_model_attributes")
        ):
            python_model = cls()
        else:
            # As unpickling would, without running code: a bare instance and its saved attributes.
            python_model = cls.__new__(cls)
            python_model.__dict__.update(load_state(model_dir, conf, code, trusted))
    else:
        raise CorruptMetadata("the python_function flavor names no python_model")
    artifacts = {
        name: str(_inside(model_dir, str(entry["path"])))
        for name, entry in (conf.get("artifacts") or {}).items()
    }
    context = PythonModelContext(artifacts, conf.get("model_config"))
    if callable(getattr(python_model, "load_context", None)):
        python_model.load_context(context)
    return _PythonModelWrapper(python_model, context)

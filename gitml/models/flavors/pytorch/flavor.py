"""The PyTorch flavor: weights as a state dict (loaded with weights_only=True), the network by
import path, and optionally a `torch.export` program; never a pickled module."""

from __future__ import annotations

import inspect
import json
import platform
import types
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gitml.exceptions import CorruptMetadata, InvalidParameterValue
from gitml.models.code import ShippedCode
from gitml.models.flavors.pytorch import SPEC
from gitml.models.flavors.pytorch._pt2 import check_pt2, forced_weights_only, require_safe_torch
from gitml.models.flavors.pytorch._structure import is_standard
from gitml.models.flavors.pytorch._structure import rebuild as rebuild_structure
from gitml.models.flavors.pytorch._structure import record as record_structure
from gitml.models.folder import (
    copy_code_paths,
    finish_model,
    mlflow_keywords,
    new_model_dir,
    require,
)
from gitml.models.model import PYFUNC_FLAVOR, Model
from gitml.models.shipping import keeps_code, model_code, ship_objects
from gitml.models.signature import ModelSignature, Schema, infer_schema

__all__ = ["FLAVOR_NAME", "load_model", "load_pyfunc", "save_model"]

FLAVOR_NAME = SPEC.name
LOADER_MODULE = SPEC.loader_module
_DATA_DIR = "data"
_STATE_DICT = "data/state_dict.pt"
_EXPORTED = "data/model.pt2"
_STRUCTURE = "data/structure.json"
_TORCHSCRIPT = "data/model.ts"
_MAX_STRUCTURE_BYTES = 16 << 20
_JSON_SCALARS = (int, float, str, bool, type(None))


def _torch() -> Any:
    return require("torch", "torch")


def _is_json_value(value: Any) -> bool:
    if isinstance(value, _JSON_SCALARS):
        return True
    if isinstance(value, list | tuple):
        return all(_is_json_value(v) for v in value)
    return False


def _guess_init_kwargs(model: Any) -> dict[str, Any] | None:
    """Constructor arguments read back from same-named attributes (`self.hidden = hidden`).

    None when a required argument cannot be found; the guess is verified by the caller.
    """
    try:
        params = inspect.signature(type(model).__init__).parameters
    except (TypeError, ValueError):
        return None
    kwargs: dict[str, Any] = {}
    for name, p in list(params.items())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = model.__dict__.get(name, getattr(model, name, inspect.Parameter.empty))
        if value is not inspect.Parameter.empty and _is_json_value(value):
            kwargs[name] = list(value) if isinstance(value, tuple) else value
        elif p.default is inspect.Parameter.empty:
            return None
    return kwargs


def _shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _rebuilds(cls: Any, args: list[Any], kwargs: dict[str, Any], state: Mapping[str, Any]) -> bool:
    """Whether cls(*args, **kwargs) has the same parameter names and shapes (built on the meta
    device: no memory, no initialisation cost)."""
    torch = _torch()
    try:
        with torch.device("meta"):
            probe = cls(*args, **kwargs)
    except Exception:  # the user's constructor may refuse the meta device; load will tell
        return True
    return bool(_shapes(probe.state_dict()) == _shapes(state))


def _as_tensor_args(example: Any) -> tuple[Any, ...]:
    torch = _torch()
    np = require("numpy", "torch")
    if isinstance(example, Mapping):
        raise InvalidParameterValue("exporting needs a tensor (or tuple of tensors) as input_example")
    items = example if isinstance(example, tuple) else (example,)
    out = []
    for item in items:
        if isinstance(item, torch.Tensor):
            out.append(item)
        else:
            out.append(torch.from_numpy(np.asarray(item)))
    return tuple(out)


def _export(model: Any, example: Any, target: Path) -> None:
    torch = _torch()
    # torch.export specialises a dimension of size 1; a batch of one is doubled so the
    # program keeps a free batch size.
    args = tuple(torch.cat([a, a]) if a.ndim and a.shape[0] == 1 else a for a in _as_tensor_args(example))
    batch = torch.export.Dim("batch", min=1)
    dynamic = tuple({0: batch} if a.ndim else None for a in args)
    try:
        program = torch.export.export(model, args, dynamic_shapes=dynamic)
    except Exception:  # some graphs specialise the batch size; a static program still serves
        try:
            program = torch.export.export(model, args)
        except Exception as e:
            raise InvalidParameterValue(f"torch.export could not export the model: {e}") from e
    torch.export.save(program, str(target))


def _output_schema(output: Any) -> Schema | None:
    # A tuple of differently shaped tensors has no MLflow schema; the input one still helps.
    if isinstance(output, tuple | list):
        return None
    try:
        return infer_schema(output)
    except InvalidParameterValue:
        return None


def _record_structure(
    model: Any, model_dir: Path, code: str | None, code_paths: Sequence[str | Path] | None
) -> tuple[dict[str, Any], str | None]:
    """The recorded structure of a standard container; user classes inside are shipped."""
    users: list[Any] = []

    def collect(module: Any) -> dict[str, Any]:
        users.append(module)
        return {"class": None}

    record_structure(model, collect)  # first pass: find the user classes (and unrecoverable layers)
    refs: dict[type, str] = {}
    built: dict[type, Any] = {}
    if users:
        classes = list(dict.fromkeys(type(u) for u in users))
        shipped = ship_objects(classes, model_dir, code, code_paths, "a PyTorch model")
        code = shipped.code
        refs = dict(zip(classes, shipped.refs, strict=True))
        built = dict(zip(classes, shipped.rebuilt, strict=True))

    def ship(module: Any) -> dict[str, Any]:
        cls = type(module)
        kwargs = _guess_init_kwargs(module)
        if kwargs is None or not _rebuilds(built[cls], [], kwargs, module.state_dict()):
            raise InvalidParameterValue(
                f"cannot tell the constructor arguments of {cls.__name__} inside the model: give an "
                "input_example to save a torch.export program, or keep them as same-named attributes"
            )
        return {"class": refs[cls], "init_kwargs": kwargs}

    return record_structure(model, ship), code


def _save_structure(structure: dict[str, Any] | None, model_dir: Path) -> str | None:
    if structure is None:
        return None
    (model_dir / _STRUCTURE).write_text(json.dumps(structure))
    return _STRUCTURE


def _save_torchscript(
    model: Any, model_dir: Path, meta: Model, code: str | None, signature: ModelSignature | None, input_example: Any
) -> None:
    torch = _torch()
    (model_dir / _DATA_DIR).mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still loads
        torch.jit.save(model, str(model_dir / _TORCHSCRIPT))
    if signature is None and input_example is not None and not isinstance(input_example, tuple):
        with torch.inference_mode():
            output = model(*_as_tensor_args(input_example))
        signature = ModelSignature(infer_schema(input_example), _output_schema(output))
    meta.signature = signature
    meta.add_flavor(
        FLAVOR_NAME,
        pytorch_version=str(torch.__version__),
        model_data=_DATA_DIR,
        torchscript=_TORCHSCRIPT,
        model_class=None,
        code=code,
    )
    meta.add_flavor(
        PYFUNC_FLAVOR, loader_module=LOADER_MODULE, data=_DATA_DIR, code=code, python_version=platform.python_version()
    )


def save_model(
    pytorch_model: Any,
    path: str | Path,
    code_paths: Sequence[str | Path] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    init_args: Sequence[Any] | None = None,
    init_kwargs: Mapping[str, Any] | None = None,
    export: bool | None = None,
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    mlflow_model: Model | None = None,
    code_path: Sequence[str | Path] | None = None,
    conda_env: Any = None,
) -> Model:
    """Save an nn.Module as a model folder that loads without unpickling.

    The weights go to `data/state_dict.pt`; the class is recorded as `module:qualname` with
    its constructor arguments (`init_args`/`init_kwargs`, else read back from same-named
    attributes and checked). With `export=True`, or when the class cannot be rebuilt and an
    `input_example` is given, a `torch.export` program is saved too.
    """
    code_paths, pip_requirements = mlflow_keywords(
        code_paths, code_path, conda_env, pip_requirements, extra_pip_requirements
    )
    torch = _torch()
    if not isinstance(pytorch_model, torch.nn.Module):
        raise InvalidParameterValue(f"pytorch_model must be a torch.nn.Module, not {type(pytorch_model).__name__}")
    if export and input_example is None:
        raise InvalidParameterValue("export=True needs an input_example to trace the model with")
    with new_model_dir(path) as model_dir:
        meta = mlflow_model or Model()
        code = copy_code_paths(code_paths, model_dir)
        if isinstance(pytorch_model, torch.jit.ScriptModule):
            _save_torchscript(pytorch_model, model_dir, meta, code, signature, input_example)
            finish_model(
                meta,
                model_dir,
                signature=meta.signature,
                input_example=input_example,
                metadata=metadata,
                requirements=["torch", "numpy"],
                pip_requirements=pip_requirements,
                extra_pip_requirements=extra_pip_requirements,
            )
            return meta
        state = pytorch_model.state_dict()
        cls = type(pytorch_model)
        problem: str | None = None
        class_path: str | None = None
        structure: dict[str, Any] | None = None
        args = list(init_args or [])
        kwargs = dict(init_kwargs) if init_kwargs is not None else None
        if is_standard(cls) and kwargs is None and not args:
            try:
                structure, code = _record_structure(pytorch_model, model_dir, code, code_paths)
            except InvalidParameterValue as e:
                problem = e.message
        else:
            try:
                shipped = ship_objects([cls], model_dir, code, code_paths, "a PyTorch model")
                class_path, code, built_cls = shipped.refs[0], shipped.code, shipped.rebuilt[0]
            except InvalidParameterValue as e:
                problem = e.message
            if class_path and kwargs is None and not args:
                kwargs = _guess_init_kwargs(pytorch_model)
                if kwargs is None or not _rebuilds(built_cls, args, kwargs, state):
                    problem = (
                        f"cannot tell {cls.__name__}'s constructor arguments: pass init_kwargs={{...}} "
                        "(JSON values) to save_model/log_model"
                    )
                    class_path = None
        if class_path is None and structure is None and (input_example is None or export is False):
            raise InvalidParameterValue(f"{problem}; or give an input_example to save a torch.export program")
        export_ok = (class_path is None and structure is None) or bool(export)

        (model_dir / _DATA_DIR).mkdir()
        torch.save(state, model_dir / _STATE_DICT)
        was_training = pytorch_model.training
        pytorch_model.eval()
        try:
            if export_ok:
                _export(pytorch_model, input_example, model_dir / _EXPORTED)
            if signature is None and input_example is not None and not isinstance(input_example, tuple):
                with torch.inference_mode():
                    output = pytorch_model(*_as_tensor_args(input_example))
                signature = ModelSignature(infer_schema(input_example), _output_schema(output))
        finally:
            pytorch_model.train(was_training)

        conf: dict[str, Any] = {
            "pytorch_version": str(torch.__version__),
            "model_data": _DATA_DIR,
            "state_dict": _STATE_DICT,
            "model_class": class_path,
            "model_structure": _save_structure(structure, model_dir),
            "init_args": args,
            "init_kwargs": kwargs or {},
            "exported_program": _EXPORTED if export_ok else None,
            "code": code,
        }
        meta.add_flavor(FLAVOR_NAME, **conf)
        meta.add_flavor(
            PYFUNC_FLAVOR,
            loader_module=LOADER_MODULE,
            data=_DATA_DIR,
            code=code,
            python_version=platform.python_version(),
        )
        finish_model(
            meta,
            model_dir,
            signature=signature,
            input_example=input_example,
            metadata=metadata,
            requirements=["torch", "numpy"],
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
        )
    return meta


def _inside(model_dir: Path, rel: str) -> Path:
    target = (model_dir / rel).resolve()
    if not target.is_relative_to(model_dir.resolve()):
        raise CorruptMetadata(f"model file {rel!r} points outside the model folder")
    if not target.is_file():
        raise CorruptMetadata(f"model file {rel!r} is missing")
    return target


def _load_state_dict(file: Path) -> Any:
    torch = _torch()
    require_safe_torch(torch)
    try:
        # weights_only: tensors and plain containers only; any other pickled object is refused.
        return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise InvalidParameterValue(
            f"refusing to load {file.name}: it is not a plain state dict of tensors ({e})"
        ) from e


def _has_meta_tensors(module: Any) -> bool:
    return any(t.is_meta for t in [*module.parameters(), *module.buffers()])


def _user_class(code: ShippedCode, path: str) -> Any:
    torch = _torch()
    cls = code.import_object(path)
    if not (inspect.isclass(cls) and issubclass(cls, torch.nn.Module)):
        raise CorruptMetadata(f"{path} is not a torch.nn.Module class")
    return cls


def _adopt(build: Any, state: Mapping[str, Any], what: str) -> Any:
    """build() on the meta device, then the loaded tensors are adopted: no random init, no copy."""
    torch = _torch()
    model: Any = None
    try:
        with torch.device("meta"):
            model = build()
        model.load_state_dict(state, strict=True, assign=True)
        if _has_meta_tensors(model):
            model = None  # a non-persistent buffer is not in the state dict: build for real
    except RuntimeError as e:
        if "size mismatch" in str(e) or "Missing key" in str(e) or "Unexpected key" in str(e):
            raise InvalidParameterValue(f"the saved weights do not fit {what}: {e}") from e
        model = None
    except (CorruptMetadata, InvalidParameterValue):
        raise
    except Exception:  # the constructor may not support the meta device
        model = None
    if model is None:
        model = build()
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise InvalidParameterValue(f"the saved weights do not fit {what}: {e}") from e
    return model


def _kwargs_of(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise CorruptMetadata(f"the constructor arguments of {what} are not a JSON object")
    return value


def _from_class(model_dir: Path, conf: Mapping[str, Any], code: ShippedCode) -> Any:
    cls = _user_class(code, str(conf["model_class"]))
    state = _load_state_dict(_inside(model_dir, str(conf.get("state_dict") or _STATE_DICT)))
    args = list(conf.get("init_args") or [])
    kwargs = _kwargs_of(conf.get("init_kwargs") or {}, cls.__name__)
    return _adopt(lambda: cls(*args, **kwargs), state, cls.__name__)


def _from_structure(model_dir: Path, conf: Mapping[str, Any], code: ShippedCode) -> Any:
    file = _inside(model_dir, str(conf["model_structure"]))
    if file.stat().st_size > _MAX_STRUCTURE_BYTES:
        raise CorruptMetadata(f"{file.name} is too large to be a model structure")
    try:
        structure = json.loads(file.read_text())
    except (ValueError, RecursionError) as e:
        raise CorruptMetadata(f"{file.name} is not a JSON model structure: {e}") from e

    def user(entry: Mapping[str, Any]) -> Any:
        cls = _user_class(code, str(entry["class"]))
        return cls(**_kwargs_of(entry.get("init_kwargs") or {}, cls.__name__))

    state = _load_state_dict(_inside(model_dir, str(conf.get("state_dict") or _STATE_DICT)))
    return _adopt(lambda: rebuild_structure(structure, user), state, "the recorded structure")


def _from_torchscript(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    torch = _torch()
    file = _inside(model_dir, str(conf["torchscript"]))
    require_safe_torch(torch)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # TorchScript's own reader: TorchScript code and tensors, no Python unpickling
            return torch.jit.load(str(file), map_location="cpu")
    except Exception as e:
        raise InvalidParameterValue(f"refusing to load {file.name}: not a TorchScript archive ({e})") from e


def _from_export(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    torch = _torch()
    file = _inside(model_dir, str(conf["exported_program"]))
    require_safe_torch(torch)
    check_pt2(torch, file)
    try:
        with forced_weights_only():
            program = torch.export.load(str(file))
    except Exception as e:
        raise InvalidParameterValue(f"refusing to load {file.name}: not a valid exported program ({e})") from e
    module = program.module()

    def _eval(self: Any, mode: bool = True) -> Any:
        return self  # traced in eval mode at save time: it already behaves as eval

    # torch makes eval() raise on exported modules; MLflow users call it after loading.
    module.eval = types.MethodType(_eval, module)
    return module


def _load(model_dir: Path, meta: Model, device: Any = None, use_exported: bool | None = None) -> Any:
    from gitml.models.predictor import load_flavor_conf

    conf = load_flavor_conf(meta, FLAVOR_NAME)
    exported = conf.get("exported_program")
    if use_exported and not exported:
        raise InvalidParameterValue("this model has no exported program (save it with export=True)")
    model = None
    if conf.get("torchscript"):
        model = _from_torchscript(model_dir, conf)
    elif (conf.get("model_class") or conf.get("model_structure")) and not use_exported:
        try:
            with model_code(model_dir, conf.get("code")) as code:
                if conf.get("model_structure"):
                    model = _from_structure(model_dir, conf, code)
                else:
                    model = _from_class(model_dir, conf, code)
        except InvalidParameterValue:
            if not exported or use_exported is False:
                raise
    if model is None:
        if not exported:
            raise CorruptMetadata("the pytorch flavor has neither a model class nor an exported program")
        model = _from_export(model_dir, conf)
    else:
        model.eval()
    if device is not None:
        model = model.to(device)
    return model


def load_model(
    model_uri: str | Path,
    dst_path: str | Path | None = None,
    device: Any = None,
    map_location: Any = None,
    use_exported: bool | None = None,
) -> Any:
    """Load an nn.Module in eval mode, on `device` (or `map_location`, MLflow's name) if given.

    The class named in the MLmodel is rebuilt and given the weights (loaded with
    `weights_only=True`); if it cannot be imported, the exported program is used.
    `use_exported=True` asks for the exported program.
    """
    from gitml.models.uri import temporary_model_dir

    with temporary_model_dir(model_uri, dst_path) as (local, keep):
        meta = Model.load(local)
        # Shipped code stays importable (a module may import more of it later).
        keep[0] = keep[0] or keeps_code(local, meta.flavors.get(FLAVOR_NAME, {}).get("code"))
        return _load(local, meta, device if device is not None else map_location, use_exported)


class _TorchPredictor:
    """The pyfunc face of a PyTorch model: numpy in, numpy out, no gradients."""

    def __init__(self, model: Any) -> None:
        self.raw_model = model
        torch = _torch()
        first = next(iter(model.parameters()), None)
        self._dtype = first.dtype if first is not None else torch.float32
        self._device = first.device if first is not None else torch.device("cpu")

    def _tensor(self, value: Any) -> Any:
        torch = _torch()
        np = require("numpy", "torch")
        if hasattr(value, "to_numpy"):
            value = value.to_numpy()
        arr = value if isinstance(value, np.ndarray) else np.asarray(value)
        if arr.dtype == object:
            raise InvalidParameterValue("input must be numeric, got objects or strings")
        tensor = torch.from_numpy(np.ascontiguousarray(arr))
        # Floats without a signature follow the network's dtype (JSON gives float64).
        if tensor.is_floating_point() and tensor.dtype != self._dtype and self._dtype.is_floating_point:
            tensor = tensor.to(self._dtype)
        return tensor.to(self._device)

    def _out(self, value: Any) -> Any:
        torch = _torch()
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy()
        if isinstance(value, Mapping):
            return {k: self._out(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._out(v) for v in value)
        return value

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        torch = _torch()
        try:
            with torch.inference_mode():
                if isinstance(data, Mapping):
                    out = self.raw_model(**{k: self._tensor(v) for k, v in data.items()})
                else:
                    out = self.raw_model(self._tensor(data))
        except (RuntimeError, ValueError, TypeError, AssertionError) as e:
            raise InvalidParameterValue(f"the model could not score this input: {e}") from e
        return self._out(out)


def load_pyfunc(model_dir: Path, meta: Model, device: Any = None, use_exported: bool | None = None, **_: Any) -> _TorchPredictor:
    """The pyfunc loader of this flavor."""
    return _TorchPredictor(_load(model_dir, meta, device, use_exported))

"""The PyTorch flavor: weights as a state dict (loaded with weights_only=True), the network by
import path, and optionally a `torch.export` program; never a pickled module.

This module is the flavor's face (save, load, the pyfunc predictor); the network by class or
recorded structure is in `_network.py`, TorchScript and `torch.export` in `_compiled.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gitml.exceptions import CorruptMetadata, InvalidParameterValue
from gitml.models.flavors.pytorch import SPEC
from gitml.models.flavors.pytorch._compiled import (
    example_signature,
    export_program,
    load_exported,
    load_torchscript,
    save_torchscript,
)
from gitml.models.flavors.pytorch._files import (
    DATA_DIR,
    EXPORTED,
    STATE_DICT,
    TORCHSCRIPT,
    torch_module,
)
from gitml.models.flavors.pytorch._network import (
    describe_network,
    load_from_class,
    load_from_structure,
    save_structure,
)
from gitml.models.flavors.pytorch._state import load_state_dict, save_state_dict
from gitml.models.folder import (
    copy_code_paths,
    finish_model,
    mlflow_keywords,
    new_model_dir,
    require,
)
from gitml.models.model import PYFUNC_FLAVOR, Model
from gitml.models.shipping import keeps_code, model_code
from gitml.models.signature import ModelSignature

__all__ = ["FLAVOR_NAME", "load_model", "load_pyfunc", "load_state_dict", "save_model", "save_state_dict"]

FLAVOR_NAME = SPEC.name
LOADER_MODULE = SPEC.loader_module


def _add_flavors(meta: Model, code: str | None, **conf: Any) -> None:
    torch = torch_module()
    meta.add_flavor(FLAVOR_NAME, pytorch_version=str(torch.__version__), model_data=DATA_DIR, **conf, code=code)
    meta.add_flavor(PYFUNC_FLAVOR, loader_module=LOADER_MODULE, data=DATA_DIR, code=code)


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
    torch = torch_module()
    if not isinstance(pytorch_model, torch.nn.Module):
        raise InvalidParameterValue(f"pytorch_model must be a torch.nn.Module, not {type(pytorch_model).__name__}")
    if export and input_example is None:
        raise InvalidParameterValue("export=True needs an input_example to trace the model with")
    with new_model_dir(path) as model_dir:
        meta = mlflow_model or Model()
        code = copy_code_paths(code_paths, model_dir)
        if isinstance(pytorch_model, torch.jit.ScriptModule):
            save_torchscript(pytorch_model, model_dir)
            signature = example_signature(pytorch_model, input_example, signature)
            _add_flavors(meta, code, torchscript=TORCHSCRIPT, model_class=None)
        else:
            signature = _save_module(
                pytorch_model, model_dir, meta, code, code_paths, signature, input_example,
                init_args, init_kwargs, export,
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


def _save_module(
    pytorch_model: Any,
    model_dir: Path,
    meta: Model,
    code: str | None,
    code_paths: Sequence[str | Path] | None,
    signature: ModelSignature | None,
    input_example: Any,
    init_args: Sequence[Any] | None,
    init_kwargs: Mapping[str, Any] | None,
    export: bool | None,
) -> ModelSignature | None:
    """Weights, network record and (when asked or needed) an exported program; the signature."""
    torch = torch_module()
    net = describe_network(pytorch_model, model_dir, code, code_paths, init_args, init_kwargs)
    if net.class_path is None and net.structure is None and (input_example is None or export is False):
        raise InvalidParameterValue(f"{net.problem}; or give an input_example to save a torch.export program")
    export_ok = (net.class_path is None and net.structure is None) or bool(export)

    (model_dir / DATA_DIR).mkdir()
    torch.save(pytorch_model.state_dict(), model_dir / STATE_DICT)
    was_training = pytorch_model.training
    pytorch_model.eval()
    try:
        if export_ok:
            export_program(pytorch_model, input_example, model_dir / EXPORTED)
        signature = example_signature(pytorch_model, input_example, signature)
    finally:
        pytorch_model.train(was_training)

    _add_flavors(
        meta,
        net.code,
        state_dict=STATE_DICT,
        model_class=net.class_path,
        model_structure=save_structure(net.structure, model_dir),
        init_args=net.init_args,
        init_kwargs=net.init_kwargs or {},
        exported_program=EXPORTED if export_ok else None,
    )
    return signature


def _load(model_dir: Path, meta: Model, device: Any = None, use_exported: bool | None = None) -> Any:
    from gitml.models.predictor import load_flavor_conf

    conf = load_flavor_conf(meta, FLAVOR_NAME)
    exported = conf.get("exported_program")
    if use_exported and not exported:
        raise InvalidParameterValue("this model has no exported program (save it with export=True)")
    model = None
    if conf.get("torchscript"):
        model = load_torchscript(model_dir, conf)
    elif (conf.get("model_class") or conf.get("model_structure")) and not use_exported:
        try:
            with model_code(model_dir, conf.get("code")) as code:
                if conf.get("model_structure"):
                    model = load_from_structure(model_dir, conf, code)
                else:
                    model = load_from_class(model_dir, conf, code)
        except InvalidParameterValue:
            if not exported or use_exported is False:
                raise
    if model is None:
        if not exported:
            raise CorruptMetadata("the pytorch flavor has neither a model class nor an exported program")
        model = load_exported(model_dir, conf)
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
        torch = torch_module()
        first = next(iter(model.parameters()), None)
        self._dtype = first.dtype if first is not None else torch.float32
        self._device = first.device if first is not None else torch.device("cpu")

    def _tensor(self, value: Any) -> Any:
        torch = torch_module()
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
        torch = torch_module()
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy()
        if isinstance(value, Mapping):
            return {k: self._out(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._out(v) for v in value)
        return value

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        torch = torch_module()
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

"""The compiled forms of a PyTorch model: TorchScript archives and `torch.export` programs
(saving, loading through the `.pt2` safety checks), and the signature read from an example."""

from __future__ import annotations

import types
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue
from gitml.models.flavors.pytorch._files import DATA_DIR, TORCHSCRIPT, inside, torch_module
from gitml.models.flavors.pytorch._pt2 import check_pt2, forced_weights_only, require_safe_torch
from gitml.models.folder import require
from gitml.models.signature import ModelSignature, Schema, infer_schema

__all__ = ["as_tensor_args", "example_signature", "export_program", "load_exported", "load_torchscript", "save_torchscript"]


def as_tensor_args(example: Any) -> tuple[Any, ...]:
    """An input example as the positional tensors the model's forward takes."""
    torch = torch_module()
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


def _output_schema(output: Any) -> Schema | None:
    # A tuple of differently shaped tensors has no MLflow schema; the input one still helps.
    if isinstance(output, tuple | list):
        return None
    try:
        return infer_schema(output)
    except InvalidParameterValue:
        return None


def example_signature(model: Any, input_example: Any, signature: ModelSignature | None) -> ModelSignature | None:
    """`signature` if given, else one inferred by running the model on a (non-tuple) example."""
    if signature is not None or input_example is None or isinstance(input_example, tuple):
        return signature
    torch = torch_module()
    with torch.inference_mode():
        output = model(*as_tensor_args(input_example))
    return ModelSignature(infer_schema(input_example), _output_schema(output))


def export_program(model: Any, example: Any, target: Path) -> None:
    """Save a `torch.export` program of `model` traced on `example`, with a free batch size
    where torch allows one."""
    torch = torch_module()
    # torch.export specialises a dimension of size 1; a batch of one is doubled so the
    # program keeps a free batch size.
    args = tuple(torch.cat([a, a]) if a.ndim and a.shape[0] == 1 else a for a in as_tensor_args(example))
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


def save_torchscript(model: Any, model_dir: Path) -> None:
    """Write a scripted module to the model folder's TorchScript archive."""
    torch = torch_module()
    (model_dir / DATA_DIR).mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still loads
        torch.jit.save(model, str(model_dir / TORCHSCRIPT))


def load_torchscript(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    """The TorchScript module the flavor configuration names."""
    torch = torch_module()
    file = inside(model_dir, str(conf["torchscript"]))
    require_safe_torch(torch)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # TorchScript's own reader: TorchScript code and tensors, no Python unpickling
            return torch.jit.load(str(file), map_location="cpu")
    except Exception as e:
        raise InvalidParameterValue(f"refusing to load {file.name}: not a TorchScript archive ({e})") from e


def load_exported(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    """The module of the exported program the flavor configuration names (checked first)."""
    torch = torch_module()
    file = inside(model_dir, str(conf["exported_program"]))
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

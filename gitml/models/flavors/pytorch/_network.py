"""The network of a PyTorch model as code, not pickle: saving it as a class reference with its
constructor arguments, or as a recorded structure of standard layers (user classes inside by
reference), and loading it back onto weights read with `weights_only=True`."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.exceptions import CorruptMetadata, InvalidParameterValue
from gitml.models.code import ShippedCode
from gitml.models.flavors.pytorch._files import STATE_DICT, STRUCTURE, inside, torch_module
from gitml.models.flavors.pytorch._pt2 import require_safe_torch
from gitml.models.flavors.pytorch._structure import is_standard
from gitml.models.flavors.pytorch._structure import rebuild as rebuild_structure
from gitml.models.flavors.pytorch._structure import record as record_structure
from gitml.models.shipping import ship_objects

__all__ = ["Network", "describe_network", "load_from_class", "load_from_structure", "save_structure"]

_MAX_STRUCTURE_BYTES = 16 << 20
_JSON_SCALARS = (int, float, str, bool, type(None))


@dataclass
class Network:
    """How a model's network was recorded: by class, by structure, or neither (`problem` says why)."""

    code: str | None
    class_path: str | None = None
    structure: dict[str, Any] | None = None
    init_args: list[Any] = field(default_factory=list)
    init_kwargs: dict[str, Any] | None = None
    problem: str | None = None


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
    torch = torch_module()
    try:
        with torch.device("meta"):
            probe = cls(*args, **kwargs)
    except Exception:  # the user's constructor may refuse the meta device; load will tell
        return True
    return bool(_shapes(probe.state_dict()) == _shapes(state))


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


def describe_network(
    model: Any,
    model_dir: Path,
    code: str | None,
    code_paths: Sequence[str | Path] | None,
    init_args: Sequence[Any] | None,
    init_kwargs: Mapping[str, Any] | None,
) -> Network:
    """Record `model`'s network: a standard container as a structure, any other class by
    reference (its code shipped into the folder when it is not importable elsewhere)."""
    cls = type(model)
    net = Network(code, init_args=list(init_args or []), init_kwargs=dict(init_kwargs) if init_kwargs is not None else None)
    if is_standard(cls) and net.init_kwargs is None and not net.init_args:
        try:
            net.structure, net.code = _record_structure(model, model_dir, code, code_paths)
        except InvalidParameterValue as e:
            net.problem = e.message
        return net
    try:
        shipped = ship_objects([cls], model_dir, code, code_paths, "a PyTorch model")
        net.class_path, net.code, built_cls = shipped.refs[0], shipped.code, shipped.rebuilt[0]
    except InvalidParameterValue as e:
        net.problem = e.message
    if net.class_path and net.init_kwargs is None and not net.init_args:
        net.init_kwargs = _guess_init_kwargs(model)
        if net.init_kwargs is None or not _rebuilds(built_cls, net.init_args, net.init_kwargs, model.state_dict()):
            net.problem = (
                f"cannot tell {cls.__name__}'s constructor arguments: pass init_kwargs={{...}} "
                "(JSON values) to save_model/log_model"
            )
            net.class_path = None
    return net


def save_structure(structure: dict[str, Any] | None, model_dir: Path) -> str | None:
    """Write the recorded structure (if any); its path in the folder."""
    if structure is None:
        return None
    (model_dir / STRUCTURE).write_text(json.dumps(structure))
    return STRUCTURE


def _load_state_dict(file: Path) -> Any:
    torch = torch_module()
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
    torch = torch_module()
    cls = code.import_object(path)
    if not (inspect.isclass(cls) and issubclass(cls, torch.nn.Module)):
        raise CorruptMetadata(f"{path} is not a torch.nn.Module class")
    return cls


def _adopt(build: Callable[[], Any], state: Mapping[str, Any], what: str) -> Any:
    """build() on the meta device, then the loaded tensors are adopted: no random init, no copy."""
    torch = torch_module()
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


def _state(model_dir: Path, conf: Mapping[str, Any]) -> Any:
    return _load_state_dict(inside(model_dir, str(conf.get("state_dict") or STATE_DICT)))


def load_from_class(model_dir: Path, conf: Mapping[str, Any], code: ShippedCode) -> Any:
    """The model rebuilt from its recorded class and constructor arguments, with its weights."""
    cls = _user_class(code, str(conf["model_class"]))
    state = _state(model_dir, conf)
    args = list(conf.get("init_args") or [])
    kwargs = _kwargs_of(conf.get("init_kwargs") or {}, cls.__name__)
    return _adopt(lambda: cls(*args, **kwargs), state, cls.__name__)


def load_from_structure(model_dir: Path, conf: Mapping[str, Any], code: ShippedCode) -> Any:
    """The model rebuilt from its recorded structure (size-capped JSON), with its weights."""
    file = inside(model_dir, str(conf["model_structure"]))
    if file.stat().st_size > _MAX_STRUCTURE_BYTES:
        raise CorruptMetadata(f"{file.name} is too large to be a model structure")
    try:
        structure = json.loads(file.read_text())
    except (ValueError, RecursionError) as e:
        raise CorruptMetadata(f"{file.name} is not a JSON model structure: {e}") from e

    def user(entry: Mapping[str, Any]) -> Any:
        cls = _user_class(code, str(entry["class"]))
        return cls(**_kwargs_of(entry.get("init_kwargs") or {}, cls.__name__))

    state = _state(model_dir, conf)
    return _adopt(lambda: rebuild_structure(structure, user), state, "the recorded structure")

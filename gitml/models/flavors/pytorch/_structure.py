"""Standard torch layers and containers as a recorded structure: each layer's type (a public
`torch.nn` class) and constructor arguments, recursively; user classes inside by reference.

Arguments are read back from the layer's same-named attributes, per the constructor's signature,
and checked: the layer rebuilt from them must print (`repr`) and hold tensors exactly as the
original. Rebuilding names only `torch.nn` classes; anything else in a record is refused.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from gitml.exceptions import CorruptMetadata, InvalidParameterValue

__all__ = ["MAX_DEPTH", "MAX_NODES", "is_standard", "rebuild", "record"]

MAX_DEPTH = 64
MAX_NODES = 100_000
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
_SKIP = {"device", "dtype", "mode", "factory_kwargs"}
_SCALARS = (int, float, str, bool, type(None))


def _nn() -> Any:
    import torch.nn

    return torch.nn


def is_standard(cls: type) -> bool:
    """Whether `cls` is a public class of `torch.nn` (not a user subclass)."""
    nn = _nn()
    name = cls.__name__
    return cls.__module__.startswith("torch.nn.") and getattr(nn, name, None) is cls


def _json(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, tuple | list):
        items = [_json(v) for v in value]
        return None if any(i is _BAD for i in items) else items
    return _BAD


_BAD = object()


def _init_params(cls: type) -> list[inspect.Parameter]:
    nn = _nn()
    init = nn.RNNBase.__init__ if issubclass(cls, nn.RNNBase) else cls.__init__  # type: ignore[misc]
    try:
        params = list(inspect.signature(init).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    return [
        p for p in params
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in _SKIP and not p.name.startswith("_")
    ]  # fmt: skip


def _layer_kwargs(layer: Any, where: str) -> dict[str, Any]:
    import torch

    kwargs: dict[str, Any] = {}
    for p in _init_params(type(layer)):
        value = getattr(layer, p.name, inspect.Parameter.empty)
        if isinstance(value, torch.Tensor) or (value is None and p.name == "bias"):
            value = value is not None  # `bias=True` leaves a bias tensor (or None) behind
        if value is inspect.Parameter.empty:
            if p.default is inspect.Parameter.empty:
                raise _unrecoverable(layer, where, f"argument {p.name!r} is not kept on the layer")
            continue
        if p.default is not inspect.Parameter.empty and type(value) is type(p.default) and value == p.default:
            continue  # the default: left out (GRU refuses even proj_size=0)
        js = _json(value)
        if js is _BAD or js is None and value is not None:
            if p.default is inspect.Parameter.empty:
                raise _unrecoverable(layer, where, f"argument {p.name!r} is a {type(value).__name__}")
            continue
        kwargs[p.name] = js
    return kwargs


def _unrecoverable(layer: Any, where: str, why: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"cannot recover the constructor arguments of layer {where or '<root>'!r} "
        f"({type(layer).__name__}: {why}): wrap the model in a class of yours and pass init_kwargs={{...}}"
    )


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _shapes(module: Any) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def record(module: Any, ship: Callable[[Any], dict[str, Any]], where: str = "") -> dict[str, Any]:
    """The structure of `module`: `ship(user_module)` returns the entry of a user class inside."""
    import torch

    cls = type(module)
    if not is_standard(cls):
        return ship(module)
    name = cls.__name__
    if name in _CONTAINERS:
        children = [[key, record(child, ship, f"{where}.{key}" if where else key)] for key, child in module.named_children()]
        return {"type": name, "children": children}
    kwargs = _layer_kwargs(module, where)
    try:
        with torch.device("meta"):
            probe = cls(**{k: _tuples(v) for k, v in kwargs.items()})
    except Exception as e:
        raise _unrecoverable(module, where, f"rebuilding it failed: {e}") from e
    if repr(probe) != repr(module) or _shapes(probe) != _shapes(module):
        raise _unrecoverable(module, where, "the arguments read back do not rebuild it")
    return {"type": name, "kwargs": kwargs}


def rebuild(entry: Any, load_class: Callable[[Mapping[str, Any]], Any], depth: int = 0, count: list[int] | None = None) -> Any:
    """The module an entry records (run under `torch.device("meta")` to skip initialisation).

    `load_class(entry)` builds the user class an entry names (through the model's code)."""
    nn = _nn()
    count = count if count is not None else [0]
    count[0] += 1
    if depth > MAX_DEPTH or count[0] > MAX_NODES:
        raise CorruptMetadata("the model structure is nested too deeply or too large")
    if not isinstance(entry, dict):
        raise CorruptMetadata("a model structure entry is not an object")
    if "class" in entry:
        return load_class(entry)
    name = entry.get("type")
    cls = getattr(nn, name, None) if isinstance(name, str) and name.isidentifier() and not name.startswith("_") else None
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module) and is_standard(cls)):
        raise CorruptMetadata(f"the model structure names {str(name)[:100]!r}, which is not a torch.nn layer")
    if name in _CONTAINERS:
        children = entry.get("children")
        if not isinstance(children, list) or not all(isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) for c in children):
            raise CorruptMetadata(f"the {name} entry of the model structure has malformed children")
        built = OrderedDict((key, rebuild(child, load_class, depth + 1, count)) for key, child in children)
        if name == "ModuleList":
            return nn.ModuleList(list(built.values()))
        if name == "ModuleDict":
            return nn.ModuleDict(built)
        return nn.Sequential(built)
    kwargs = entry.get("kwargs") or {}
    if not isinstance(kwargs, dict) or any(_json(v) is _BAD for v in kwargs.values()):
        raise CorruptMetadata(f"the {name} entry of the model structure has malformed arguments")
    allowed = {p.name for p in _init_params(cls)}
    if not set(kwargs) <= allowed:
        raise CorruptMetadata(f"the {name} entry names arguments {sorted(set(kwargs) - allowed)} it does not take")
    try:
        return cls(**{str(k): _tuples(v) for k, v in kwargs.items()})
    except Exception as e:
        raise CorruptMetadata(f"cannot rebuild {name} from the model structure: {e}") from e

"""The flavor registry: the one list of the flavors gitml knows, each a folder with a `SPEC`.

A flavor is a package (`gitml/models/flavors/<name>/`) whose `__init__.py` declares one
`FlavorSpec` named `SPEC` and imports nothing heavy. `REGISTERED` below names the built-in
ones, one line each; `register("package")` adds another at run time. What reads the list:

- pyfunc loading (`gitml.models.predictor`): the `loader_module` an MLmodel names must be a
  registered flavor's, so a model file never chooses which code runs;
- the public faces `gitml.<face>` (`gitml.faces` builds them from the spec);
- model images (`gitml.deploy.dockerfile`): the extras and requirements a flavor needs;
- the docs: `gitml.<face>.<name>` in them is checked against the face's stub (`tests/test_docs.py`).
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

from gitml.exceptions import InvalidParameterValue
from gitml.models.flavors.spec import FlavorSpec

__all__ = [
    "REGISTERED",
    "FlavorSpec",
    "by_face",
    "by_loader_module",
    "flavors",
    "register",
    "unregister",
]

# THE registration list: one line per built-in flavor, the package holding its SPEC.
REGISTERED: tuple[str, ...] = (
    "gitml.models.flavors.pytorch",
    "gitml.models.flavors.sklearn",
    "gitml.models.flavors.keras",
    "gitml.models.flavors.pyfunc",
)

_PACKAGE_DIR = Path(__file__).resolve().parents[2]  # gitml/: a face may not shadow its modules
_lock = threading.Lock()
_specs: dict[str, FlavorSpec] = {}  # package -> its SPEC, in registration order
_loaded = False


def _spec_of(package: str) -> FlavorSpec:
    spec = getattr(importlib.import_module(package), "SPEC", None)
    if not isinstance(spec, FlavorSpec):
        raise InvalidParameterValue(f"{package} declares no SPEC (a gitml.models.flavors.FlavorSpec)")
    return spec


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded:
            for package in REGISTERED:
                _specs.setdefault(package, _spec_of(package))
            _loaded = True


def register(package: str) -> FlavorSpec:
    """Add the flavor whose package (importable, with a `SPEC`) is `package`; returns its spec.

    Its faces then resolve as `gitml.<face>`, its models load through `gitml.pyfunc`, and
    model images install what it declares. A face or MLmodel name already taken is refused.
    """
    _ensure_loaded()
    spec = _spec_of(package)
    with _lock:
        if package in _specs:
            return _specs[package]
        taken = [f for f in spec.faces if (_PACKAGE_DIR / f).is_dir() or (_PACKAGE_DIR / f"{f}.py").is_file()]
        if taken:
            raise InvalidParameterValue(f"flavor {spec.name!r} ({package}): gitml.{taken[0]} is a gitml module")
        for other in _specs.values():
            if set(other.faces) & set(spec.faces) or set(other.mlmodel_names) & set(spec.mlmodel_names):
                raise InvalidParameterValue(
                    f"flavor {spec.name!r} ({package}) clashes with {other.name!r}: "
                    "a face or an MLmodel name is already registered"
                )
        _specs[package] = spec
    return spec


def unregister(package: str) -> None:
    """Remove a flavor added with `register` (the built-in ones stay)."""
    if package in REGISTERED:
        raise InvalidParameterValue(f"{package} is a built-in flavor")
    with _lock:
        _specs.pop(package, None)


def flavors() -> tuple[FlavorSpec, ...]:
    """Every registered flavor's spec, built-in ones first."""
    _ensure_loaded()
    return tuple(_specs.values())


def by_face(face: str) -> FlavorSpec | None:
    """The flavor shown by the public module `gitml.<face>`, if any."""
    return next((s for s in flavors() if face in s.faces), None)


def by_loader_module(loader_module: str) -> FlavorSpec | None:
    """The flavor whose models name `loader_module` in MLmodel's python_function section."""
    return next((s for s in flavors() if s.loader_module == loader_module), None)

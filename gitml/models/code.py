"""A model's shipped `code/` folder: importable only while that model's classes load, and never
in place of an installed or standard-library module.

Every flavor imports a model's classes through here::

    with shipped_code(model_dir, conf.get("code")) as code:
        cls = code.import_object("my_module:MyModel")   # name checked before any import
        mod = code.import_module("my_package.layers")

Inside the block, a finder placed *last* on `sys.meta_path` serves the top-level names found in
the model's `code/` folder; installed packages and the standard library are always found first,
so a shipped `code/json.py` or `code/torch/__init__.py` is never imported in their place. When the
block ends the finder is gone: a later `import torch` anywhere in the process finds the installed
torch. Modules already imported from the folder stay in `sys.modules` (the loaded objects need
them); submodules of a shipped package keep importing through the package's own `__path__`.

Two models that ship a module of the same name each get their own: entering one model's block
evicts a same-named module that another model's block served.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import keyword
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from gitml.exceptions import CorruptMetadata, InvalidParameterValue

__all__ = ["ShippedCode", "check_import_path", "import_object", "shipped_code"]

_lock = threading.RLock()
# top-level module name -> the code folder that served it (to tell two models' modules apart)
_served: dict[str, Path] = {}


def _dotted(name: str, what: str, text: str) -> list[str]:
    parts = name.split(".")
    for part in parts:
        if not part.isidentifier() or keyword.iskeyword(part) or part.startswith("__"):
            raise CorruptMetadata(f"{what} {text!r} is not a valid import path (bad part {part!r})")
    return parts


def check_import_path(path: str) -> tuple[str, str]:
    """Split and check `module:qualname` before anything is imported: dotted identifiers, no
    dunder parts, and never a standard-library module (a model class does not live there)."""
    if not isinstance(path, str) or len(path) > 1000:
        raise CorruptMetadata(f"malformed import path {str(path)[:100]!r}")
    module, sep, qualname = path.partition(":")
    if not sep or not module or not qualname:
        raise CorruptMetadata(f"malformed import path {path!r} (expected module:qualname)")
    top = _dotted(module, "module of", path)[0]
    _dotted(qualname, "class name of", path)
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        raise CorruptMetadata(f"import path {path!r} names a standard-library module, not a model class")
    return module, qualname


class ShippedCode(importlib.abc.MetaPathFinder):
    """The modules of one model's code folder (a finder consulted after every other one)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec for a top-level name found in the code folder (submodules use their package)."""
        if self.folder is None or path is not None or "." in fullname:
            return None
        if fullname in sys.stdlib_module_names or fullname in sys.builtin_module_names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, [str(self.folder)])
        if spec is not None:
            _served[fullname] = self.folder
        return spec

    def _evict_foreign(self, top: str) -> None:
        """Drop modules another model's folder served under a name this folder also holds:
        `top` itself, and the folder's other modules that `top` may import in turn."""
        assert self.folder is not None
        for name, owner in list(_served.items()):
            if owner == self.folder:
                continue
            if name != top and not ((self.folder / f"{name}.py").is_file() or (self.folder / name).is_dir()):
                continue
            for loaded in [n for n in sys.modules if n == name or n.startswith(name + ".")]:
                del sys.modules[loaded]
            del _served[name]

    def import_module(self, name: str) -> ModuleType:
        """Import `name` (installed modules first, then this model's code folder)."""
        top = _dotted(name, "module", name)[0]
        if self.folder is not None:
            self._evict_foreign(top)
        try:
            return importlib.import_module(name)
        except ImportError as e:
            raise InvalidParameterValue(
                f"cannot import {name!r} to load the model: install it, put it on PYTHONPATH, "
                f"or save the model with code_paths=[...] ({e})"
            ) from e

    def import_object(self, path: str) -> Any:
        """The object named by `module:qualname`, checked before its module is imported."""
        module_name, qualname = check_import_path(path)
        obj: Any = self.import_module(module_name)
        for part in qualname.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError as e:
                raise InvalidParameterValue(f"{module_name} has no {qualname!r}") from e
        return obj


def _code_folder(model_dir: Path, code: str | None) -> Path | None:
    if not code:
        return None
    folder = (model_dir / str(code)).resolve()
    if not folder.is_relative_to(model_dir.resolve()) or not folder.is_dir():
        raise CorruptMetadata(f"model code folder {code!r} is missing or outside the model")
    return folder


@contextlib.contextmanager
def shipped_code(model_dir: Path | str, code: str | None) -> Iterator[ShippedCode]:
    """Make `model_dir/code` importable for the duration of the block (see the module doc).

    `code` is the flavor's `code` entry of the MLmodel (None or "" when the model ships none:
    the block then imports installed modules only)."""
    finder = ShippedCode(_code_folder(Path(model_dir), code))
    if finder.folder is None:
        yield finder
        return
    with _lock:
        sys.meta_path.append(finder)
        try:
            yield finder
        finally:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(finder)


def import_object(path: str) -> Any:
    """The object named by `module:qualname` among installed modules (no model code)."""
    return ShippedCode(None).import_object(path)

"""Naming a model's classes so they load anywhere: by import path when installed (or shipped in
`code_paths`), else as source extracted into the model's `code/` folder (see `source`)."""

from __future__ import annotations

import contextlib
import importlib.machinery
import itertools
import linecache
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue
from gitml.models.code import ShippedCode, shipped_code
from gitml.models.folder import CODE_DIR, object_path
from gitml.models.source import extract_source, needs_source

__all__ = ["EXTRACTED_PREFIX", "ShippedRefs", "keeps_code", "model_code", "ship_objects"]

EXTRACTED_PREFIX = "gitml_src_"

_counter = itertools.count()


class ShippedRefs:
    """What `ship_objects` wrote: one `module:qualname` per object (in order), the code folder
    to name in MLmodel (None when nothing is shipped), and the classes rebuilt from the extracted
    source (the live objects for those named by import path)."""

    def __init__(self, refs: list[str], code: str | None, rebuilt: list[Any]) -> None:
        self.refs = refs
        self.code = code
        self.rebuilt = rebuilt


def _free_stem(stem: str, folder: Path, taken: frozenset[str] | set[str] = frozenset()) -> str:
    """A module name that neither a shipped file nor an installed/stdlib module already takes
    (the code folder is searched after installed modules)."""
    # A distinctive name: the code folder is searched after sys.path, where a user's own
    # `train.py` could sit in the working directory of the loading process.
    base = f"{EXTRACTED_PREFIX}{stem}"
    for n in itertools.count():
        name = base if n == 0 else f"{base}_{n}"
        if name in taken or (folder / f"{name}.py").exists() or (folder / name).exists():
            continue
        if name in sys.stdlib_module_names or name in sys.builtin_module_names:
            continue
        # sys.path only (a model loaded earlier in this process does not count)
        if importlib.machinery.PathFinder.find_spec(name) is not None:
            continue
        return name
    raise AssertionError("unreachable")


def _check_imports(
    text: str, file: Path, names: Sequence[str], modules: Sequence[str]
) -> list[Any]:
    """Run the extracted file once, as loading will (imports and definitions only, the user's
    modules it imports served from the code folder), to catch what static reading cannot;
    returns the rebuilt objects."""
    name = f"gitml_source_check_{next(_counter)}"
    module = types.ModuleType(name)
    module.__file__ = str(file)
    before = {m: sys.modules.pop(m) for m in modules if m in sys.modules}
    sys.modules[name] = module
    try:
        with shipped_code(file.parent.parent, file.parent.name):
            exec(compile(text, str(file), "exec"), module.__dict__)  # noqa: S102 - the user's own code, just extracted
        return [getattr(module, n) for n in names]
    except Exception as e:
        raise InvalidParameterValue(
            f"the source extracted for {', '.join(names)} does not import on its own ({type(e).__name__}: "
            f"{e}); move what it needs to the top level of the file, or pass code_paths=[...]"
        ) from e
    finally:
        sys.modules.pop(name, None)
        for m in modules:
            sys.modules.pop(m, None)
        sys.modules.update(before)


def ship_objects(
    objs: Sequence[Any],
    model_dir: Path,
    code: str | None,
    code_paths: Sequence[str | Path] | None = None,
    what: str = "the model",
) -> ShippedRefs:
    """References to `objs` (classes or functions) that a loader in another process can import.

    `code` is the code folder already made from `code_paths` (or None)."""
    extract = [o for o in objs if needs_source(o, code_paths)]
    refs: dict[int, str] = {}
    rebuilt: dict[int, Any] = {}
    for obj in objs:
        if obj not in extract:
            refs[id(obj)] = object_path(obj, code_paths)
            rebuilt[id(obj)] = obj
    if extract:
        folder = model_dir / CODE_DIR
        taken: set[str] = set()

        def namer(suggested: str) -> str:
            taken.add(name := _free_stem(suggested, folder, taken))
            return name

        extracted = extract_source(extract, what, namer)
        folder.mkdir(exist_ok=True)
        for module_name, text in extracted.modules:
            (folder / f"{module_name}.py").write_text(text)
        stem = _free_stem(extracted.stem, folder, taken)
        file = folder / f"{stem}.py"
        file.write_text(extracted.text)
        again = _check_imports(
            extracted.text, file, extracted.names, [m for m, _ in extracted.modules]
        )
        for obj, name, new in zip(extract, extracted.names, again, strict=True):
            refs[id(obj)] = f"{stem}:{name}"
            rebuilt[id(obj)] = new
        code = CODE_DIR
    return ShippedRefs([refs[id(o)] for o in objs], code, [rebuilt[id(o)] for o in objs])


def keeps_code(model_dir: Path, code: Any) -> bool:
    """Whether a loaded model still needs its code folder on disk: shipped packages may import
    more of themselves later; an extracted source file is whole once imported."""
    if not code or not isinstance(code, str):
        return False
    folder = model_dir / code
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    return any(
        not (e.name.startswith(EXTRACTED_PREFIX) and e.suffix == ".py")
        for e in entries
        if e.name != "__pycache__"
    )


@contextlib.contextmanager
def model_code(model_dir: Path, code: str | None) -> Iterator[ShippedCode]:
    """`shipped_code` (the model's code/ importable for the block only), after which the
    source of each extracted module it imported is kept in memory: a loaded model can be
    saved again (fine-tuned, re-logged) after its downloaded copy is gone."""
    with shipped_code(model_dir, code) as shipped:
        yield shipped
    if not code or shipped.folder is None:
        return
    for file in shipped.folder.glob(f"{EXTRACTED_PREFIX}*.py"):
        module = sys.modules.get(file.stem)
        if (
            module is None
            or Path(getattr(module, "__file__", "") or "").resolve() != file.resolve()
        ):
            continue
        text = file.read_text()
        # mtime None: linecache never re-reads (or drops) this entry
        linecache.cache[str(module.__file__)] = (
            len(text),
            None,
            text.splitlines(keepends=True),
            str(module.__file__),
        )

"""The public faces of the flavors, `gitml.pytorch`, `gitml.sklearn`, `gitml.pyfunc` ..., built
from the flavor registry (`gitml.models.flavors`) instead of one hand-written module each.

`import gitml` puts `FaceFinder` in `sys.meta_path` after the path finder: an import of `gitml.<face>`
that no file answers is answered here when a registered flavor declares that face. The face
module holds the names the spec exports from the flavor's implementation (`save_model`,
`load_model`, `FLAVOR_NAME` ...) and a `log_model` with MLflow's signature for the flavor,
which saves through the flavor's `save_model` and logs on the fluent floor. Faces of one flavor
(`gitml.keras` and `gitml.tensorflow`) share the same function objects.

Type checkers see the built-in faces through the stubs next to this module (`gitml/pytorch.pyi`
...), which `make faces` writes from the registry (`write_stubs`).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import threading
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

__all__ = ["FaceFinder", "face_names", "install", "stub_text", "write_stubs"]

_PREFIX = __name__.rpartition(".")[0] + "."  # "gitml."
_lock = threading.RLock()
_namespaces: dict[str, tuple[types.ModuleType, dict[str, Any]]] = {}  # implementation -> (module, face names)


def face_names() -> list[str]:
    """Every registered face (`pytorch`, `sklearn`, `pyfunc`, ...)."""
    from gitml.models.flavors import flavors

    return [face for spec in flavors() for face in spec.faces]


def _log_model(spec: Any, save_model: Callable[..., Any], face: str) -> Callable[..., Any]:
    import inspect

    from gitml.fluent.models import log_flavor_model

    P = inspect.Parameter
    first, second = spec.log_args
    params = [
        P(first, P.POSITIONAL_OR_KEYWORD, default=None if first == "artifact_path" else P.empty),
        P(second, P.POSITIONAL_OR_KEYWORD, default=None),
        P("name", P.KEYWORD_ONLY, default=None, annotation="str | None"),
        P("registered_model_name", P.KEYWORD_ONLY, default=None, annotation="str | None"),
        P("kwargs", P.VAR_KEYWORD, annotation="Any"),
    ]
    signature = inspect.Signature(params, return_annotation="ModelInfo")
    model_arg = first if second == "artifact_path" else second

    def log_model(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        given = dict(bound.arguments)
        extra = given.pop("kwargs")
        return log_flavor_model(
            save_model,
            given["artifact_path"],
            name=given["name"],
            registered_model_name=given["registered_model_name"],
            **{model_arg: given[model_arg]},
            **extra,
        )

    log_model.__signature__ = signature  # type: ignore[attr-defined]
    log_model.__doc__ = spec.log_doc
    log_model.__module__ = _PREFIX + face
    log_model.__qualname__ = "log_model"
    return log_model


def _first_param(save: Callable[..., Any]) -> str:
    import inspect

    return next(iter(inspect.signature(save).parameters))


def _log_saved(save: Callable[..., Any], log: str, face: str) -> Callable[..., Any]:
    """`log_x(obj, artifact_path, **kwargs)`: `save(obj, folder, **kwargs)` into a temporary
    folder, whose files are then logged under `artifact_path` on the active run. The first
    parameter has the save function's name (`state_dict`)."""
    import inspect

    P = inspect.Parameter
    signature = inspect.Signature(
        [
            P(_first_param(save), P.POSITIONAL_OR_KEYWORD),
            P("artifact_path", P.POSITIONAL_OR_KEYWORD, annotation="str"),
            P("kwargs", P.VAR_KEYWORD, annotation="Any"),
        ],
        return_annotation="None",
    )

    def log_saved(*args: Any, **kwargs: Any) -> None:
        import tempfile

        from gitml.fluent.artifacts import log_artifacts

        bound = signature.bind(*args, **kwargs)
        given = dict(bound.arguments)
        extra = given.pop("kwargs", {})
        obj, artifact_path = given.values()
        with tempfile.TemporaryDirectory(prefix="gitml-log-") as tmp:
            save(obj, tmp, **extra)
            log_artifacts(tmp, artifact_path)

    log_saved.__signature__ = signature  # type: ignore[attr-defined]
    log_saved.__doc__ = _LOG_SAVED_DOC.format(save=save.__name__)
    log_saved.__module__ = _PREFIX + face
    log_saved.__name__ = log_saved.__qualname__ = log
    return log_saved


_LOG_SAVED_DOC = "Save with `{save}` (same arguments) and log the folder under `artifact_path` on the active run."


def _autolog(face: str) -> Callable[..., None]:
    def autolog(*args: Any, **kwargs: Any) -> None:
        from gitml.fluent.repository import autolog as accept

        accept()

    autolog.__doc__ = _AUTOLOG_DOC
    autolog.__module__ = _PREFIX + face
    autolog.__qualname__ = "autolog"
    return autolog


_AUTOLOG_DOC = "Accepted so MLflow scripts run; gitml logs what the script logs, nothing automatically (it says so)."


def _namespace(spec: Any) -> dict[str, Any]:
    with _lock:
        impl = importlib.import_module(spec.implementation)
        cached = _namespaces.get(spec.implementation)
        if cached is not None and cached[0] is impl:  # the same module: faces share objects
            return cached[1]
        names = {name: getattr(impl, name) for name in spec.exports}
        if "log_model" not in names:
            names["log_model"] = _log_model(spec, names["save_model"], next(iter(spec.faces)))
        for log, save in spec.logs.items():
            names.setdefault(log, _log_saved(names[save], log, next(iter(spec.faces))))
        if "autolog" not in names:  # `mlflow.sklearn.autolog()` in a script must not fail
            names["autolog"] = _autolog(next(iter(spec.faces)))
        _namespaces[spec.implementation] = (impl, names)
        return names


class FaceFinder:
    """Finds and builds `gitml.<face>` for the registered flavors (a meta path finder and its
    loader; not derived from `importlib.abc`, whose import costs `import gitml` ~10 ms)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec for `gitml.<face>` when a registered flavor declares that face."""
        if not fullname.startswith(_PREFIX) or "." in fullname[len(_PREFIX) :]:
            return None
        from gitml.models.flavors import by_face

        if by_face(fullname[len(_PREFIX) :]) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, cast("Loader", self), origin="gitml.models.flavors")

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        """The default module object."""
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        """Fill the face from its flavor's spec: docstring, exported names, `log_model`."""
        from gitml.models.flavors import by_face

        face = module.__name__[len(_PREFIX) :]
        spec = by_face(face)
        if spec is None:  # unregistered between find and exec
            raise ImportError(f"no registered flavor shows gitml.{face}", name=module.__name__)
        names = _namespace(spec)
        module.__doc__ = spec.faces[face]
        module.__dict__.update(names)
        module.__all__ = sorted(names)  # type: ignore[attr-defined]


_FINDER = FaceFinder()


def install() -> None:
    """Put the finder right after the standard path finder in `sys.meta_path` (once): a file
    always wins over it, and it answers before finders that map `gitml` elsewhere (an
    editable install of another checkout)."""
    if _FINDER in sys.meta_path:
        return
    after = next(
        (i + 1 for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder),
        len(sys.meta_path),
    )
    sys.meta_path.insert(after, _FINDER)


def stub_text(face: str) -> str:
    """The type stub (`gitml/<face>.pyi`) of a registered face: what type checkers of user
    code read, since the face itself has no source file."""
    from gitml.models.flavors import by_face

    spec = by_face(face)
    if spec is None:
        raise KeyError(face)
    first, second = spec.log_args

    def param(arg: str, default: str) -> str:
        return f"    {arg}: str | None = None," if arg == "artifact_path" else f"    {arg}: Any{default},"
    lines = [
        f'"""{spec.faces[face]}\n\nWritten by `make faces` from the flavor registry: do not edit."""',
        "",
        "from typing import Any",
        "",
        *[f"from {spec.implementation} import {name} as {name}" for name in spec.exports],
        "from gitml.models.model import ModelInfo",
        "",
        "__all__ = [",
        *[f'    "{name}",' for name in sorted({*spec.exports, *spec.logs, "autolog", "log_model"})],
        "]",
        "",
        "def log_model(",
        param(first, ""),
        param(second, " = None"),
        "    *,",
        "    name: str | None = None,",
        "    registered_model_name: str | None = None,",
        "    **kwargs: Any,",
        ") -> ModelInfo:",
        f'    """{spec.log_doc}"""',
        "",
        *[
            line
            for log, save in spec.logs.items()
            for line in (
                f"def {log}({_first_param(getattr(importlib.import_module(spec.implementation), save))}: Any, "
                "artifact_path: str, **kwargs: Any) -> None:",
                f'    """{_LOG_SAVED_DOC.format(save=save)}"""',
                "",
            )
        ],
        *(
            []
            if "autolog" in spec.exports
            else ["def autolog(*args: Any, **kwargs: Any) -> None:", f'    """{_AUTOLOG_DOC}"""', ""]
        ),
    ]
    return "\n".join(lines)


def write_stubs(check: bool = False) -> list[str]:
    """Write `gitml/<face>.pyi` for every face of the built-in flavors (`make faces`, run by
    `make lint`); returns the stubs that were missing or stale (written unless `check`)."""
    from pathlib import Path

    from gitml.models.flavors import REGISTERED, flavors

    root = Path(__file__).resolve().parent
    stale = []
    for spec in flavors():
        if not spec.implementation.startswith(tuple(f"{p}." for p in REGISTERED)):
            continue  # a flavor registered at run time has no file in this package
        for face in spec.faces:
            path = root / f"{face}.pyi"
            text = stub_text(face)
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
                if not check:
                    path.write_text(text)
    return stale

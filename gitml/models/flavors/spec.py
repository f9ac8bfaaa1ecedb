"""What a flavor declares about itself: one `FlavorSpec`, the `SPEC` of its folder's `__init__.py`.

Everything outside the folder reads the spec through the registry (`gitml.models.flavors`):
pyfunc loading (which `loader_module` an MLmodel may name), the public faces (`gitml.pytorch`
...), the model image's extras (`gitml.deploy.dockerfile`) and the docs' flavor list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["FlavorSpec"]


@dataclass(frozen=True)
class FlavorSpec:
    """One flavor: where its code is, which faces show it, what its model image needs.

    - `name`: the flavor's section in MLmodel (`pytorch`, `sklearn`, `python_function` ...).
    - `implementation`: the module holding `FLAVOR_NAME`, `save_model`, `load_model` and
      `load_pyfunc(model_dir, meta, **options)` (imported only when the flavor is used).
    - `faces`: public module name -> its docstring. `gitml.<face>` is built from the spec;
      the first face is the `loader_module` the flavor writes in MLmodel, the others are
      aliases (`tensorflow` for Keras).
    - `exports`: the implementation's names each face shows; `log_model` is added by the face.
    - `log_args`: `log_model`'s two leading parameters, in MLflow's order: the model's
      argument name and `artifact_path` (pyfunc puts `artifact_path` first).
    - `log_doc`: `log_model`'s docstring.
    - `logs`: more `log_*` functions of the faces -> the implementation's save function each
      one wraps (`{"log_state_dict": "save_state_dict"}`): the face's `log_x(obj,
      artifact_path, **kwargs)` saves into a temporary folder and logs it under
      `artifact_path` on the active run.
    - `extra`: the extra of gitml (pyproject.toml) a model image installs for this flavor,
      if any; `requirements`: pip requirements the image installs besides (for a flavor
      whose framework gitml has no extra for).
    - `aliases`: other MLmodel section names that need the same extra (MLflow's
      `tensorflow` flavor for Keras 3 models).
    """

    name: str
    implementation: str
    faces: Mapping[str, str]
    exports: tuple[str, ...] = ("FLAVOR_NAME", "load_model", "save_model")
    log_args: tuple[str, str] = ("model", "artifact_path")
    log_doc: str = "Log the model to the active run (see `save_model` for the arguments)."
    logs: Mapping[str, str] = field(default_factory=dict)
    extra: str | None = None
    requirements: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.faces:
            raise ValueError(f"flavor {self.name!r} declares no face")
        for face in self.faces:
            if not face.isidentifier() or face.startswith("_"):
                raise ValueError(f"flavor {self.name!r}: face {face!r} is not a public module name")
        for log, save in self.logs.items():
            if not log.startswith("log_") or not log.isidentifier() or save not in self.exports:
                raise ValueError(f"flavor {self.name!r}: logs entry {log!r} -> {save!r} is not a log_* of an export")
        if "artifact_path" not in self.log_args:
            raise ValueError(f"flavor {self.name!r}: log_args must name artifact_path")

    @property
    def loader_module(self) -> str:
        """The `loader_module` the flavor's models name in MLmodel: `gitml.<first face>`."""
        return f"gitml.{next(iter(self.faces))}"

    @property
    def mlmodel_names(self) -> tuple[str, ...]:
        """The MLmodel sections this flavor answers for (its name, then its aliases)."""
        return (self.name, *self.aliases)

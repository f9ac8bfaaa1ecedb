"""The custom-code flavor and generic loading (`gitml.pyfunc`): its spec; the code is in
`flavor.py` (PythonModel) and `gitml.models.predictor` (any flavor as a PyFuncModel)."""

from __future__ import annotations

from gitml.models.flavors.spec import FlavorSpec

__all__ = ["SPEC"]

SPEC = FlavorSpec(
    name="python_function",  # PYFUNC_FLAVOR, spelled out: a spec imports nothing
    implementation=f"{__name__}.flavor",
    faces={"pyfunc": "`gitml.pyfunc`: custom PythonModels, and loading any model as a generic predictor."},
    exports=(
        "ALLOW_PICKLE_ENV",
        "FLAVOR_NAME",
        "PyFuncModel",
        "PythonModel",
        "PythonModelContext",
        "get_model_dependencies",
        "load_model",
        "save_model",
    ),
    log_args=("artifact_path", "python_model"),
    log_doc="Log a PythonModel to the active run (see `save_model` for the arguments).",
)

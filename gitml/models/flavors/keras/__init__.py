"""The Keras 3 flavor (`gitml.keras`, and `gitml.tensorflow` for MLflow's names): its spec;
the code is in `flavor.py`."""

from __future__ import annotations

from gitml.models.flavors.spec import FlavorSpec

__all__ = ["SPEC"]

SPEC = FlavorSpec(
    name="keras",
    implementation=f"{__name__}.flavor",
    faces={
        "keras": "`gitml.keras`: save, log and load Keras 3 models (MLflow's `mlflow.keras` names).",
        "tensorflow": (
            "`gitml.tensorflow`: MLflow's `mlflow.tensorflow` names for Keras 3 models (`gitml.keras`);\n"
            "the backend is the user's choice (`KERAS_BACKEND=tensorflow`), PyTorch when unset."
        ),
    },
    log_args=("keras_model", "artifact_path"),
    log_doc="Log a Keras model to the active run (see `save_model` for the arguments).",
    extra="keras",
    aliases=("tensorflow",),
)

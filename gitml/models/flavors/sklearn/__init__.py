"""The scikit-learn flavor (`gitml.sklearn`): its spec; the code is in `flavor.py`."""

from __future__ import annotations

from gitml.models.flavors.spec import FlavorSpec

__all__ = ["SPEC"]

SPEC = FlavorSpec(
    name="sklearn",
    implementation=f"{__name__}.flavor",
    faces={"sklearn": "`gitml.sklearn`: save, log and load scikit-learn models (MLflow's `mlflow.sklearn` names)."},
    log_args=("sk_model", "artifact_path"),
    log_doc="Log a fitted estimator to the active run (see `save_model` for the arguments).",
    extra="sklearn",
)

"""The PyTorch flavor (`gitml.pytorch`): its spec; the code is in `flavor.py`."""

from __future__ import annotations

from gitml.models.flavors.spec import FlavorSpec

__all__ = ["SPEC"]

SPEC = FlavorSpec(
    name="pytorch",
    implementation=f"{__name__}.flavor",
    faces={"pytorch": "`gitml.pytorch`: save, log and load PyTorch models (MLflow's `mlflow.pytorch` names)."},
    exports=("FLAVOR_NAME", "load_model", "load_state_dict", "save_model", "save_state_dict"),
    logs={"log_state_dict": "save_state_dict"},
    log_args=("pytorch_model", "artifact_path"),
    log_doc="Log an nn.Module to the active run (see `save_model` for the arguments).",
    extra="torch",
)

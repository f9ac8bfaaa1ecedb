"""`log_image` as MLflow 2.12+ has it: a static image at a path (`artifact_file=`), or a
step-indexed image (`key=`, `step=`, `timestamp=`) stored under `images/` in MLflow's layout
with a WebP preview, the run tagged `mlflow.loggedImages` so MLflow's UI shows its charts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitml import constants as C
from gitml.exceptions import InvalidParameterValue
from gitml.tracking.experiments import now_ms
from gitml.tracking.validation import check_run_id, check_timestamp

if TYPE_CHECKING:
    from gitml.tracking.tracker import Tracker

__all__ = ["check_image_args", "log_image"]


def check_image_args(artifact_file: Any, key: Any, step: Any, timestamp: Any) -> None:
    """MLflow's rule: `artifact_file` alone, or `key` (with `step` and `timestamp`)."""
    if artifact_file is not None and (key is not None or step is not None or timestamp is not None):
        raise InvalidParameterValue(
            "log_image takes artifact_file alone, or key (with step and timestamp): not both"
        )
    if artifact_file is None and key is None:
        raise InvalidParameterValue(
            "log_image needs artifact_file (a static image) or key (an image logged per step)"
        )


def log_image(
    tracker: Tracker,
    run_id: str,
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
) -> list[str]:
    """Log `image` (numpy array or Pillow image) into the run; returns the artifact paths
    written. Exactly one of `artifact_file` or `key`; `step`/`timestamp` go with `key` only
    (MLflow's rules: step 0 and the current time when not given)."""
    from gitml.artifacts import api

    check_run_id(run_id)
    check_image_args(artifact_file, key, step, timestamp)
    if key is None:
        api.log_run_image(tracker, run_id, image, str(artifact_file))
        return [str(artifact_file)]
    step_ = check_timestamp(step or 0, "image step")
    time_ = check_timestamp(timestamp or now_ms(), "image timestamp")
    paths = api.log_run_step_image(tracker, run_id, image, key, step_, time_)
    tracker.writer(run_id).set_tag(C.TAG_LOGGED_IMAGES, "True")
    return paths

"""`mlflow.models.validate_serving_input`: score a request body as the scoring server would,
without a server, to check a model and its payload before deploying them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue
from gitml.models.predictor import load_model
from gitml.models.uri import is_remote_uri
from gitml.serving.formats import input_spec, merge_inputs, parse_json, parse_request

__all__ = ["validate_serving_input"]


def validate_serving_input(model_uri: str | Path, serving_input: str | bytes | dict[str, Any]) -> Any:
    """Load the model at `model_uri` and return its predictions for `serving_input`, an
    `/invocations` JSON body (a string, or the decoded dict); a wrong body raises
    InvalidParameterValue, as the server would answer 400."""
    if not isinstance(serving_input, str | bytes | dict):
        raise InvalidParameterValue(
            f"serving_input must be a JSON string or a dict, got {type(serving_input).__name__}"
        )
    # A downloaded copy serves this one check: it goes with the call (a PythonModel would
    # otherwise keep it, for artifacts it reads at predict time).
    with tempfile.TemporaryDirectory(prefix="gitml-validate-") as scratch:
        model = load_model(model_uri, dst_path=scratch if is_remote_uri(model_uri) else None)
        spec = input_spec(model)
        if isinstance(serving_input, dict):
            parsed = parse_json(serving_input, spec)
        else:
            body = serving_input.encode() if isinstance(serving_input, str) else serving_input
            parsed = parse_request(body, "application/json", spec)
        return model.predict(merge_inputs([parsed]), params=parsed.params)

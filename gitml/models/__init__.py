"""gitml.models: the MLmodel format, signatures, model URIs and the flavors (MLflow's names).

The names resolve on first use, so that importing a submodule (the flavor registry,
`gitml.models.flavors`, which `import gitml.<face>` reads) does not load model URIs, the
registry and tracking with it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitml.models.folder import convert_input_example_to_serving_input
    from gitml.models.model import Model, ModelInfo
    from gitml.models.signature import (
        ColSpec,
        ModelSignature,
        Schema,
        TensorSpec,
        infer_signature,
    )
    from gitml.models.signature_edit import set_signature
    from gitml.models.uri import resolve_model_uri

__all__ = [
    "ColSpec",
    "Model",
    "ModelInfo",
    "ModelSignature",
    "Schema",
    "TensorSpec",
    "convert_input_example_to_serving_input",
    "get_model_info",
    "infer_signature",
    "resolve_model_uri",
    "set_signature",
    "validate_serving_input",
]

_LAZY = {
    "ColSpec": "gitml.models.signature",
    "Model": "gitml.models.model",
    "ModelInfo": "gitml.models.model",
    "ModelSignature": "gitml.models.signature",
    "Schema": "gitml.models.signature",
    "TensorSpec": "gitml.models.signature",
    "convert_input_example_to_serving_input": "gitml.models.folder",
    "infer_signature": "gitml.models.signature",
    "resolve_model_uri": "gitml.models.uri",
    "set_signature": "gitml.models.signature_edit",
    # MLflow's path for a function of the layer above (the scoring server's parser): a face name
    "validate_serving_input": "gitml.serving.validation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gitml.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def get_model_info(model_uri: str | Path) -> ModelInfo:
    """The ModelInfo (uuid, run id, flavors, signature, ...) of the model at `model_uri`."""
    from gitml.models.model import Model
    from gitml.models.uri import resolve_model_uri

    text = str(model_uri)
    return Model.load(text if text.startswith(("runs:/", "models:/")) else resolve_model_uri(text)).get_model_info(text)

"""The flavors gitml can load, and the allow-list of pyfunc loader modules."""

from __future__ import annotations

__all__ = ["LOADERS"]

# `loader_module` names an MLmodel may carry -> the module that implements the flavor.
# Only these are imported: a model file never chooses which code runs.
LOADERS: dict[str, str] = {
    "gitml.pytorch": "gitml.models.flavors.pytorch",
    "gitml.sklearn": "gitml.models.flavors.sklearn",
    "gitml.pyfunc": "gitml.models.flavors.python_model",
    "gitml.keras": "gitml.models.flavors.keras",
}

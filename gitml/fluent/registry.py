"""`gitml.register_model(model_uri, name)`: MLflow's fluent registration."""

from __future__ import annotations

from typing import Any

from gitml.fluent.tracking import _tracker
from gitml.registry.client import RegistryClient
from gitml.registry.entities import ModelVersion

__all__ = [
    "register_model",
    "register_model_with",
    "search_model_versions",
    "search_registered_models",
    "set_model_version_tag",
]


def register_model(
    model_uri: str,
    name: str,
    await_registration_for: int | None = None,
    *,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
) -> ModelVersion:
    """Register the model at `model_uri` (`runs:/<run_id>/<path>` or `models:/...`) as a new version
    of `name`, creating the registered model if needed."""
    return register_model_with(
        _registry_client(), model_uri, name, tags=tags, description=description
    )


def register_model_with(
    client: RegistryClient,
    model_uri: str,
    name: str,
    *,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
) -> ModelVersion:
    """`register_model` through a given client (a RegistryClient or an MlflowClient)."""
    from gitml.exceptions import ResourceAlreadyExists

    try:
        client.create_registered_model(name)
    except ResourceAlreadyExists:
        pass
    mv: ModelVersion = client.create_model_version(
        name, model_uri, tags=tags, description=description
    )
    return mv


def _registry_client() -> RegistryClient:
    return RegistryClient(tracker=_tracker())


def search_registered_models(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Any]:
    """Registered models matching `filter_string` (MLflow's fluent form: a plain list)."""
    client = _registry_client()
    return list(client.search_registered_models(filter_string, max_results or 100_000, order_by))


def search_model_versions(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[ModelVersion]:
    """Model versions matching `filter_string` (MLflow's fluent form: a plain list)."""
    client = _registry_client()
    return list(client.search_model_versions(filter_string, max_results or 100_000, order_by))


def set_model_version_tag(
    name: str,
    version: Any = None,
    key: str | None = None,
    value: Any = None,
    stage: str | None = None,
) -> None:
    """Set a tag on a model version."""
    _registry_client().set_model_version_tag(name, version, key, value, stage)

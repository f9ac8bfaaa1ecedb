"""`gitml models ...`: the registry, prediction and serving commands, grouped."""

from __future__ import annotations

import click

from gitml.cli._lazy import LazyGroup

__all__ = ["models"]

# Subcommands by module: registry (registry.py), predict (predict.py), serve (serve.py).
MODEL_COMMANDS: dict[str, str] = {
    "serve": "gitml.cli.serve:serve",
    "predict": "gitml.cli.predict:predict",
    "register": "gitml.cli.registry:register",
    "list": "gitml.cli.registry:list_models",
    "show": "gitml.cli.registry:show",
    "history": "gitml.cli.registry:history",
    "transition-stage": "gitml.cli.registry:transition_stage",
    "alias": "gitml.cli.registry:alias",
    "current": "gitml.cli.registry:current",
    "generate-dockerfile": "gitml.cli.deploy:generate_dockerfile",
    "build-docker": "gitml.cli.deploy:build_docker",
}


@click.group(cls=LazyGroup, lazy=MODEL_COMMANDS)
def models() -> None:
    """Log, register, promote, predict with and serve models."""

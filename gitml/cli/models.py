"""`gitml models ...`: the registry, prediction and serving commands, grouped."""

from __future__ import annotations

import click

from gitml.cli._lazy import LazyGroup

__all__ = ["models"]

# Subcommands by module: registry (registry.py), predict (predict.py), serve (serve.py).
MODEL_COMMANDS: dict[str, str] = {
    "serve": "gitml.cli.serve:serve",
    "predict": "gitml.cli.predict:predict",
}


@click.group(cls=LazyGroup, lazy=MODEL_COMMANDS)
def models() -> None:
    """Log, register, promote, predict with and serve models."""

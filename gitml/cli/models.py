"""`gitml models ...`: the registry, prediction and serving commands, grouped."""

from __future__ import annotations

import click

from gitml.cli._lazy import LazyCommand, LazyGroup

__all__ = ["models"]

# Subcommands by module: registry (registry.py), predict (predict.py), serve (serve.py).
MODEL_COMMANDS: dict[str, LazyCommand] = {
    "serve": LazyCommand(
        "gitml.cli.serve:serve",
        "Serve a model over REST: POST /invocations, GET /ping, /health, /version, /metrics, and the Open Inference Protocol (V2): /v2/health/*, /v2/models/NAME[/versions/V]/infer.",
    ),
    "predict": LazyCommand(
        "gitml.cli.predict:predict",
        'Predict with a model on a JSON or CSV file; prints {"predictions": ...} as JSON.',
    ),
    "register": LazyCommand(
        "gitml.cli.registry:register",
        "Register the model at MODEL_URI (runs:/<run_id>/<path>) as a new version of NAME.",
    ),
    "list": LazyCommand(
        "gitml.cli.registry:list_models",
        "List registered models with their latest version and the version in each stage.",
    ),
    "show": LazyCommand(
        "gitml.cli.registry:show",
        "Show a registered model and its versions (or one version with --version).",
    ),
    "history": LazyCommand(
        "gitml.cli.registry:history",
        "Who registered, promoted, demoted and deleted what, and when: NAME's tags, oldest first.",
    ),
    "transition-stage": LazyCommand(
        "gitml.cli.registry:transition_stage",
        "Move a version to a stage, with new Git tags (MLflow's transition-stage).",
    ),
    "alias": LazyCommand(
        "gitml.cli.registry:alias",
        "Point ALIAS of model NAME at VERSION (or remove it with --delete).",
    ),
    "current": LazyCommand(
        "gitml.cli.registry:current",
        "Print the version current in a stage (or alias, or the latest) and the URI to deploy.",
    ),
    "generate-dockerfile": LazyCommand(
        "gitml.cli.deploy:generate_dockerfile",
        "Write a Dockerfile (and its build context) serving the model version the URI names now.",
    ),
    "build-docker": LazyCommand(
        "gitml.cli.deploy:build_docker",
        "Build an image serving the model version the URI names now, on port 8080, as a non-root user.",
    ),
}


@click.group(cls=LazyGroup, lazy=MODEL_COMMANDS)
def models() -> None:
    """Register, promote, predict with, serve and package models."""

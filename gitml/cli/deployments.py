"""`gitml deployments record|list`: the deployment history on the metadata branch."""

from __future__ import annotations

import click

__all__ = ["deployments"]


@click.group()
def deployments() -> None:
    """Deployments recorded by CI: which model version went where, when, from which pipeline."""

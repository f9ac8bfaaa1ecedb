"""Fixtures for project tests: the deploy tests' Docker engine, reused (one per session)."""

from __future__ import annotations

from tests.deploy.conftest import docker_engine  # noqa: F401

__all__: list[str] = []

"""Deployment: model images, Kubernetes and KServe manifests, Argo and Kubeflow pipelines."""

from __future__ import annotations

__all__: list[str] = []

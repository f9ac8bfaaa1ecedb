"""Deployment: Dockerfiles and images, Kubernetes/KServe manifests, Argo/Kubeflow pipelines.

Sits above ci in the import table: it may import ci and everything below it; serving,
fluent and cli sit above it.
"""

__all__: list[str] = []

"""Projects: MLproject parsing, environments, backends (local, docker, kubernetes), reproduce.

Sits above models in the import table: it may import models, registry, tracking, artifacts,
store and the base modules; ci, deploy, serving, fluent and cli sit above it.
"""

__all__: list[str] = []

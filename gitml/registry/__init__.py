"""The model registry: GTO-format Git tags for versions, stages and aliases (see docs/registry.md).

Modules: tags (the grammar), refs (reading and creating tags), state (gto show's rules),
registry (reads and atomic writes), client (MLflow's methods), stages (stages and aliases),
resolve (`models:/` URIs), sync (clashing tags across clones), metadata (descriptions on the
branch), search, sources, entities, fluent (`gitml.register_model`).
"""

__all__: list[str] = []

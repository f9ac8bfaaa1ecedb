"""The model registry: GTO-format Git tags for versions, stages and aliases (see docs/registry.md).

Modules: tags (the grammar), refs (reading and creating tags), history (the state `gto show`
computes from the tags), access (one repository's registry: reads and atomic writes), client
(MLflow's methods) with stage_methods (stages and aliases), resolve (`models:/` URIs),
reconcile (clashing tags across clones), metadata (descriptions on the branch), search,
sources, entities. `gitml.register_model` is on the fluent floor (gitml/fluent/registry.py).
"""

__all__: list[str] = []

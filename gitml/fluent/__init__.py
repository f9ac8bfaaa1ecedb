"""The porcelain floor: MLflow's "current run, current repository" API over the library.

Everything here may hold process state (the active-run stack, the active experiment per
repository); every package below takes the repository and the run id as arguments.
Modules: tracking (runs, params, metrics, experiments), artifacts (`log_*` into the active
run; download/list/load by URI), tables (`log_table`/`load_table`), models (`log_model`'s
common path), registry (`register_model` and friends), sharing (push/pull/sync, autopush).
"""

__all__: list[str] = []

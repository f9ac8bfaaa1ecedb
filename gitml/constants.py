"""Every name and format gitml writes, defined once."""

from __future__ import annotations

__all__ = [
    "DEFAULT_BRANCH",
    "DEFAULT_EXPERIMENT_ID",
    "DEFAULT_EXPERIMENT_NAME",
    "DEFAULT_FLUSH_INTERVAL_S",
    "FORMAT_FILE",
    "STAGING_DIR",
    "FORMAT_VERSION",
    "STATE_DIR",
    "commit_runs_path",
    "experiment_dir",
    "run_dir",
]

DEFAULT_BRANCH = "gitml"
DEFAULT_FLUSH_INTERVAL_S = 30.0
FORMAT_VERSION = 1
# At the branch root: names the format version, so readers refuse what they cannot read.
FORMAT_FILE = "gitml.yaml"
# Local, disposable state (journals, the query index) under the repo's git dir.
STATE_DIR = "gitml"
# <state dir>/staging/<run_id>/artifacts: the folder get_artifact_uri() names while a run is active
STAGING_DIR = "staging"

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"

EXPERIMENTS_DIR = "experiments"
RUNS_DIR = "runs"
REGISTRY_DIR = "registry"
# commits/<sha[:2]>/<sha>.json = {run_id: end_time}: the latest finished runs of a code commit
COMMITS_DIR = "commits"
# Permanent deletions, so that merges with clones that still hold them do not bring them back:
# {"runs": {run_id: time}, "experiments": {experiment_id: creation_time of the deleted one}}
PURGED_FILE = "purged.json"

# Files of a run directory.
RUN_META = "meta.json"
RUN_PARAMS = "params.json"
RUN_TAGS = "tags.json"
RUN_METRICS = "metrics.json"  # latest value of each metric
RUN_HISTORY_DIR = "history"  # immutable chunks of (key, value, timestamp, step)
RUN_ARTIFACTS = "artifacts.json"  # artifact pointers (DVC field names)
EXPERIMENT_META = "meta.yaml"
EXPERIMENT_TAGS = "tags.json"


def run_dir(run_id: str) -> str:
    """The run's directory: fanned out by id prefix so no tree holds more than ~1000 entries."""
    return f"{RUNS_DIR}/{run_id[:2]}/{run_id}"


def commit_runs_path(commit: str) -> str:
    """The file listing the runs whose source is `commit`."""
    return f"{COMMITS_DIR}/{commit[:2]}/{commit}.json"


def experiment_dir(experiment_id: str) -> str:
    """The experiment's directory on the metadata branch."""
    return f"{EXPERIMENTS_DIR}/{experiment_id}"

"""Every name and format gitml writes, defined once."""

from __future__ import annotations

VERSION = "0.1.0"  # gitml's own version (`gitml.__version__`), recorded in MLmodel files

__all__ = [
    "DEFAULT_BRANCH",
    "DEFAULT_EXPERIMENT_ID",
    "DEFAULT_EXPERIMENT_NAME",
    "DEFAULT_FLUSH_INTERVAL_S",
    "FORMAT_FILE",
    "FORMAT_VERSION",
    "NULL_SHA",
    "STAGING_DIR",
    "STATE_DIR",
    "TAG_DOCKER_BUILD",
    "TAG_DOCKER_IMAGE_ID",
    "TAG_DOCKER_IMAGE_URI",
    "TAG_GIT_BRANCH",
    "TAG_GIT_COMMIT",
    "TAG_GIT_DIRTY",
    "TAG_GIT_REPO_URL",
    "TAG_GIT_REPO_URL_OLD",
    "TAG_LOGGED_ARTIFACTS",
    "TAG_LOGGED_IMAGES",
    "TAG_LOG_MODEL_HISTORY",
    "TAG_NOTE",
    "TAG_PARENT_RUN_ID",
    "TAG_PROJECT_BACKEND",
    "TAG_PROJECT_CACHE_KEY",
    "TAG_PROJECT_COMMAND",
    "TAG_PROJECT_ENTRY_POINT",
    "TAG_PROJECT_ENV",
    "TAG_PROJECT_EXIT_CODE",
    "TAG_PROJECT_PATH",
    "TAG_PROJECT_RECORD",
    "TAG_PROJECT_STEPS",
    "TAG_PROJECT_STEP_PREFIX",
    "TAG_PROV_CODE_TREE",
    "TAG_PROV_CUDA",
    "TAG_PROV_DATA_FILES",
    "TAG_PROV_DATA_SHA256",
    "TAG_PROV_DIFF_SHA256",
    "TAG_PROV_DIRTY",
    "TAG_PROV_GPU",
    "TAG_PROV_GPU_DRIVER",
    "TAG_PROV_PACKAGES_SHA256",
    "TAG_PROV_PYTHON",
    "TAG_PROV_UNTRACKED",
    "TAG_REPRODUCES",
    "TAG_RUN_NAME",
    "TAG_SOURCE_NAME",
    "TAG_SOURCE_TYPE",
    "TAG_USER",
    "VERSION",
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
RUN_INPUTS = "inputs.jsonl"  # dataset inputs, one JSON object a line (append-only)
EXPERIMENT_META = "meta.yaml"
EXPERIMENT_TAGS = "tags.json"


# Run folders are fanned out by this many leading characters of the id (the walker of them
# is gitml.tracking.layout.RUN_DIRS).
RUN_PREFIX_LEN = 2


def run_dir(run_id: str) -> str:
    """The run's directory: fanned out by id prefix so no tree holds more than ~1000 entries."""
    return f"{RUNS_DIR}/{run_id[:RUN_PREFIX_LEN]}/{run_id}"


def commit_runs_path(commit: str) -> str:
    """The file listing the runs whose source is `commit`."""
    return f"{COMMITS_DIR}/{commit[:2]}/{commit}.json"


def experiment_dir(experiment_id: str) -> str:
    """The experiment's directory on the metadata branch."""
    return f"{EXPERIMENTS_DIR}/{experiment_id}"


# Git's null object id: "no such ref" in ref updates and push/fetch lines.
NULL_SHA = "0" * 40

# Well-known run tag keys (MLflow's, and gitml's own `gitml.*`), spelled once.
TAG_RUN_NAME = "mlflow.runName"
TAG_DATASET_CONTEXT = "mlflow.data.context"  # a dataset input's context (training, eval ...)
TAG_USER = "mlflow.user"
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
TAG_NOTE = "mlflow.note.content"
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_BRANCH = "mlflow.source.git.branch"
TAG_GIT_REPO_URL = "mlflow.source.git.repoURL"
TAG_GIT_DIRTY = "gitml.source.dirty"
TAG_LOG_MODEL_HISTORY = "mlflow.log-model.history"
TAG_LOGGED_ARTIFACTS = "mlflow.loggedArtifacts"
TAG_LOGGED_IMAGES = "mlflow.loggedImages"  # MLflow: the run has step-indexed images (its UI's image charts)
TAG_GIT_REPO_URL_OLD = "mlflow.gitRepoURL"  # the older spelling MLflow still writes beside it
# `gitml run` (MLflow's project tags, then gitml's own).
TAG_PROJECT_ENTRY_POINT = "mlflow.project.entryPoint"
TAG_PROJECT_BACKEND = "mlflow.project.backend"
TAG_PROJECT_ENV = "mlflow.project.env"
TAG_DOCKER_IMAGE_URI = "mlflow.docker.image.uri"  # MLflow's: the image a docker run ran in
TAG_DOCKER_IMAGE_ID = "mlflow.docker.image.id"
TAG_DOCKER_BUILD = "gitml.docker.build_sha256"  # a built project image's content hash
TAG_PROJECT_PATH = "gitml.project.path"
TAG_PROJECT_COMMAND = "gitml.project.command"
TAG_PROJECT_CACHE_KEY = "gitml.project.cache_key"
TAG_PROJECT_EXIT_CODE = "gitml.project.exit_code"
TAG_PROJECT_RECORD = "gitml.project.run"  # what `gitml reproduce` needs, as JSON
TAG_PROJECT_STEPS = "gitml.project.steps"  # a pipeline's parent run: its steps, as JSON
TAG_PROJECT_STEP_PREFIX = "gitml.step."  # + step name: the run id of that step
TAG_REPRODUCES = "gitml.reproduces"  # the run id a `gitml reproduce` run re-ran
# The searchable summaries of a `gitml run` run's provenance.
TAG_PROV_DIRTY = "gitml.provenance.dirty"
TAG_PROV_DIFF_SHA256 = "gitml.provenance.diff_sha256"
TAG_PROV_UNTRACKED = "gitml.provenance.untracked"
TAG_PROV_CODE_TREE = "gitml.provenance.code_tree"
TAG_PROV_DATA_SHA256 = "gitml.provenance.data_sha256"
TAG_PROV_DATA_FILES = "gitml.provenance.data_files"
TAG_PROV_PYTHON = "gitml.provenance.python"
TAG_PROV_PACKAGES_SHA256 = "gitml.provenance.packages_sha256"
TAG_PROV_GPU = "gitml.provenance.gpu"
TAG_PROV_GPU_DRIVER = "gitml.provenance.gpu_driver"
TAG_PROV_CUDA = "gitml.provenance.cuda"

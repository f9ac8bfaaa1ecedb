"""Deployments made by CI, recorded on the metadata branch, and the plan of the next one.

Layout (schema: gitml/schemas/deployment.schema.json):
    deployments/<model, '/' as '~'>/<environment>/<YYYYmmddTHHMMSSfffZ>-<8 hex>.json

One file per deployment, never rewritten: two runners recording at once write two paths, so
their commits merge without a conflict. The newest file of a model's environment is what is
deployed there; files that fail the schema (the branch is hostile) are skipped.

The plan answers the deploy job's question: which version is *current* in the stage now
(`gitml models current`, not the tag that fired), and is it already deployed?
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from gitml.constants import FORMAT_FILE, FORMAT_VERSION
from gitml.exceptions import CorruptMetadata, InvalidParameterValue, ResourceDoesNotExist
from gitml.store.repo import GitRepo

if TYPE_CHECKING:
    from gitml.registry.access import Registry

__all__ = [
    "DEPLOYMENTS_DIR",
    "DeployPlan",
    "Deployment",
    "last_deployment",
    "list_deployments",
    "new_deployment",
    "plan_deployment",
    "record_deployment",
]

DEPLOYMENTS_DIR = "deployments"
_FILE = re.compile(r"^(\d{8}T\d{9}Z)-([0-9a-f]{8})\.json$")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_MAX_FILE = 64 * 1024


@dataclass(frozen=True)
class Deployment:
    """One deployment: which version of which model went to which environment, when, by whom."""

    model: str
    version: int
    stage: str
    environment: str
    time: int  # milliseconds since the epoch
    pipeline_url: str | None = None
    user: str | None = None
    semver: str | None = None
    model_uri: str | None = None
    git_tag: str | None = None
    git_commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as written on the branch (None fields left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def new_deployment(
    registry: Registry,
    model: str,
    version: int,
    stage: str,
    environment: str,
    *,
    pipeline_url: str | None = None,
    user: str | None = None,
    now_ms: int | None = None,
) -> Deployment:
    """A record of deploying `version` of `model`, with the registry's tag and commit for it."""
    found = registry.state().models.get(model)
    v = found.version(version) if found is not None else None
    if v is None:
        raise ResourceDoesNotExist(f"{model} has no version {version} in the registry")
    return Deployment(
        model=model,
        version=version,
        stage=stage,
        environment=environment,
        time=int(time.time() * 1000) if now_ms is None else now_ms,
        pipeline_url=pipeline_url,
        user=user,
        semver=v.semver,
        model_uri=f"models:/{model}/{version}",
        git_tag=v.registration.tag,
        git_commit=v.commit,
    )


def _validator() -> Any:
    from gitml.registry.metadata import validate_obj

    return validate_obj


def _dir(model: str, environment: str) -> str:
    # '~' is not in the model-name grammar: "a/b" and model "a" in environment "b" stay apart.
    return f"{DEPLOYMENTS_DIR}/{model.replace('/', '~')}/{environment}"


def _check_word(value: str, what: str) -> str:
    if not isinstance(value, str) or not _WORD.fullmatch(value) or ".." in value.split("/"):
        raise InvalidParameterValue(f"{what} {value!r}: use letters, digits, '.', '_', '-', '/'")
    return value


def record_deployment(repo: GitRepo, deployment: Deployment) -> str:
    """Commit the deployment's record onto the metadata branch; return its path there."""
    from gitml.registry.tags import validate_model_name

    validate_model_name(deployment.model)
    _check_word(deployment.stage, "stage")
    _check_word(deployment.environment, "environment")
    record = deployment.to_dict()
    _validator()(record, "deployment.schema.json", "the deployment")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(deployment.time / 1000))
    name = f"{stamp}{deployment.time % 1000:03d}Z-{secrets.token_hex(4)}.json"
    path = f"{_dir(deployment.model, deployment.environment)}/{name}"
    data = (json.dumps(record, sort_keys=True, indent=1) + "\n").encode()

    def build(base_tree: str) -> dict[str, bytes | None]:
        changes: dict[str, bytes | None] = {path: data}
        if repo.read_file(base_tree, FORMAT_FILE) is None:
            from gitml.tracking import layout

            changes[FORMAT_FILE] = layout.encode(
                FORMAT_FILE, {"format": FORMAT_VERSION, "created_by": "gitml"}
            )
        return changes

    message = (
        f"deployment: {deployment.model} version {deployment.version} -> "
        f"{deployment.environment} ({deployment.stage})"
    )
    repo.commit(build, message)
    return path


def _read(repo: GitRepo, tree: str, path: str) -> Deployment | None:
    data = repo.read_file(tree, path)
    if data is None or len(data) > _MAX_FILE:
        return None
    try:
        obj = json.loads(data)
        _validator()(obj, "deployment.schema.json", path)
    except (ValueError, CorruptMetadata):
        return None  # a hostile or broken record is skipped, the rest still reads
    return Deployment(**obj)


def _files(repo: GitRepo, tree: str, folder: str) -> list[str]:
    """The record files of one model's environment, newest first."""
    entries = repo.list_dir(tree, folder) if repo.lookup(tree, folder) is not None else {}
    names = [n for n, e in entries.items() if _FILE.fullmatch(n) and not e.is_tree]
    return [f"{folder}/{n}" for n in sorted(names, reverse=True)]


def _folders(repo: GitRepo, tree: str, model: str | None) -> Iterator[str]:
    if repo.lookup(tree, DEPLOYMENTS_DIR) is None:
        return
    models = [model.replace("/", "~")] if model else sorted(repo.list_dir(tree, DEPLOYMENTS_DIR))
    for m in models:
        base = f"{DEPLOYMENTS_DIR}/{m}"
        if repo.lookup(tree, base) is None:
            continue
        for env in sorted(repo.list_dir(tree, base)):
            yield f"{base}/{env}"


def list_deployments(
    repo: GitRepo,
    model: str | None = None,
    environment: str | None = None,
    limit: int | None = None,
) -> list[Deployment]:
    """Recorded deployments, newest first (of one model and/or environment when given)."""
    tree = repo.tree_of(repo.tip())
    out: list[Deployment] = []
    for folder in _folders(repo, tree, model):
        if environment is not None and folder.rsplit("/", 1)[-1] != environment:
            continue
        for path in _files(repo, tree, folder):
            found = _read(repo, tree, path)
            if found is not None:
                out.append(found)
    out.sort(key=lambda d: d.time, reverse=True)
    return out[:limit] if limit is not None else out


def last_deployment(repo: GitRepo, model: str, environment: str) -> Deployment | None:
    """The newest valid record of `model` in `environment`, or None."""
    tree = repo.tree_of(repo.tip())
    for path in _files(repo, tree, _dir(model, environment)):
        found = _read(repo, tree, path)
        if found is not None and found.model == model and found.environment == environment:
            return found
    return None


@dataclass(frozen=True)
class DeployPlan:
    """What the deploy job should do: deploy (or not, and why) which version of which model."""

    deploy: bool
    reason: str
    model: str | None = None
    version: int | None = None
    semver: str | None = None
    model_uri: str | None = None
    stage: str | None = None
    environment: str | None = None
    git_tag: str | None = None
    git_commit: str | None = None

    def lines(self) -> list[str]:
        """`key=value` lines, as GitHub's $GITHUB_OUTPUT and a shell's `sed` read them."""
        fields = {
            "deploy": "true" if self.deploy else "false",
            "model": self.model or "",
            "version": "" if self.version is None else str(self.version),
            "model_uri": self.model_uri or "",
            "stage": self.stage or "",
            "environment": self.environment or "",
            "reason": " ".join(self.reason.split()),
        }
        return [f"{k}={v}" for k, v in fields.items()]


def _model_tags(repo: GitRepo, name: str) -> list[Any]:
    """The tags of one model only: `for-each-ref` with the model's two tag prefixes (in C, over
    packed refs), then its few tag objects. Names are validated before they reach Git, and
    start with refs/tags/, so no value can read as an option."""
    import subprocess

    from gitml.exceptions import RepositoryError
    from gitml.registry.refs import RawTag, parse_tag_object, read_objects

    prefixes = (f"{name}@", f"{name}#")  # '@' and '#' are not in model names: exact
    proc = subprocess.run(
        ["git", "for-each-ref", "--format=%(objectname) %(objecttype) %(refname)",
         *(f"refs/tags/{p}*" for p in prefixes)],
        cwd=repo.git_dir, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RepositoryError(f"cannot list tags: {proc.stderr.strip()}")
    listing = []
    for line in proc.stdout.splitlines():
        sha, kind, ref = line.split(" ", 2)
        tag = ref[len("refs/tags/") :]
        if tag.startswith(prefixes):
            listing.append((sha, kind, tag))
    objects = read_objects(repo, sorted({sha for sha, kind, _ in listing if kind == "tag"}))
    out: list[Any] = []
    for sha, kind, tag in listing:
        if kind != "tag":
            out.append(RawTag(tag, sha, sha, kind, False, 0, "+0000", "", "", ""))
            continue
        obj = objects.get(sha)
        if obj is not None and obj[0] == "tag":
            out.append(parse_tag_object(tag, sha, obj[1]))
    return out


def _one_model(registry: Registry, name: str) -> Registry:
    """A view of the registry holding only `name`'s tags.

    A deploy job asks about one model: reading and indexing every tag (10,000 in
    bench/bench_ci.py) is most of the job's time in a fresh clone, where no tag index exists.
    """
    from gitml.registry.access import Registry
    from gitml.registry.history import build_state

    class _OneModel(Registry):
        def state(self) -> Any:
            return build_state(_model_tags(self.repo, name))

    return _OneModel(registry.repo)


def plan_deployment(
    registry: Registry, *, tag: str | None, model: str | None, stage: str, environment: str
) -> DeployPlan:
    """Resolve what is current in `stage` for the model (named, or read from the tag that
    fired) and whether `environment` already runs it."""
    from gitml.registry.resolve import current_version
    from gitml.registry.tags import parse_tag, validate_model_name

    _check_word(stage, "stage")
    _check_word(environment, "environment")
    name = model or None
    if name is None:
        parsed = parse_tag(tag) if tag else None
        if parsed is None:
            return DeployPlan(
                False,
                f"{tag!r} is not a registry tag: nothing to deploy",
                stage=stage,
                environment=environment,
            )
        name = parsed.model
    validate_model_name(name)
    try:
        current = current_version(name, stage=stage, registry=_one_model(registry, name))
    except ResourceDoesNotExist as e:
        return DeployPlan(
            False, f"nothing is current: {e.message}", name, stage=stage, environment=environment
        )
    base = DeployPlan(
        True, "", name, current.version, current.semver, current.model_uri, stage, environment,
        current.git_tag, current.git_commit,
    )  # fmt: skip
    last = last_deployment(registry.repo, name, environment)
    if last is not None and last.version == current.version:
        return DeployPlan(
            **{**asdict(base), "deploy": False,
               "reason": f"version {current.version} of {name} is already deployed to {environment}"},
        )  # fmt: skip
    was = f" (replacing version {last.version})" if last is not None else ""
    reason = f"version {current.version} of {name} is current in {stage}{was}"
    return DeployPlan(**{**asdict(base), "reason": reason})

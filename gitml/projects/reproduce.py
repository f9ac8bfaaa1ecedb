"""`gitml reproduce`: re-run a past run at its recorded commit, patch, params and env; compare.

The target is a run id, a registered version (`name@v1.2.0`) or a `models:/` URI. The
run's provenance (read back from the branch, so validated like any hostile input) names
the commit, the patch, the entry point and the parameters. A throw-away `git worktree`
at that commit gets the patch applied and, when the project uses DVC, its data pulled;
the entry point runs there as a new run tagged `gitml.reproduces`, and the metrics of
both runs are compared with relative and absolute tolerances.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml import constants as C
from gitml.exceptions import InvalidParameterValue, RemoteError, ResourceDoesNotExist
from gitml.projects.docker_image import is_repo_digest
from gitml.projects.envs import ENV_MANAGERS
from gitml.projects.launch import PATCH_FILE, PROVENANCE_FILE, RECORD_TAG

if TYPE_CHECKING:
    from gitml.entities import Run
    from gitml.tracking.client import TrackingClient

__all__ = ["MetricDelta", "ReproduceResult", "parse_tolerances", "reproduce", "resolve_target"]

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_SEMVER = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9\-/_]*[A-Za-z0-9])?)@(?P<ver>v\d+\.\d+\.\d+)$"
)
_MAX_RECORD = 4 << 20


@dataclass(frozen=True)
class MetricDelta:
    """One metric of the original run beside the reproduction's."""

    key: str
    original: float | None
    new: float | None
    rtol: float
    atol: float

    @property
    def delta(self) -> float | None:
        """new - original (None when either is missing)."""
        return None if self.original is None or self.new is None else self.new - self.original

    @property
    def ok(self) -> bool:
        """Within `atol + rtol * |original|` (both NaN counts as equal; a missing side does not)."""
        a, b = self.original, self.new
        if a is None or b is None:
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(b - a) <= self.atol + self.rtol * abs(a)


@dataclass
class ReproduceResult:
    """The reproduction's run and its metric table."""

    original_run_id: str
    run_id: str
    status: str
    returncode: int | None
    rows: list[MetricDelta] = field(default_factory=list)
    worktree: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def within(self) -> bool:
        """Every metric within its tolerance."""
        return all(r.ok for r in self.rows)

    def table(self) -> str:
        """A plain-text table of metric deltas, then the verdict."""
        head = ("metric", "original", "reproduced", "delta", "")
        body = [
            (r.key, _fmt(r.original), _fmt(r.new), _fmt(r.delta), "ok" if r.ok else "DRIFT")
            for r in self.rows
        ]
        widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(5)]
        lines = [
            "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [head, *body]
        ]
        for name, same in self.checks.items():
            lines.append(f"{name}: {'same' if same else 'DIFFERENT'}")
        verdict = "within tolerance" if self.within else "DRIFT"
        lines.append(
            f"reproduced {self.original_run_id} as {self.run_id} ({self.status}): {verdict}"
        )
        if self.worktree:
            lines.append(f"worktree kept at {self.worktree}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `--json`."""
        return {
            "original_run_id": self.original_run_id,
            "run_id": self.run_id,
            "status": self.status,
            "within_tolerance": self.within,
            "checks": self.checks,
            "metrics": [
                {
                    "key": r.key,
                    "original": r.original,
                    "reproduced": r.new,
                    "delta": r.delta,
                    "ok": r.ok,
                }
                for r in self.rows
            ],
        }


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.6g}"


def parse_tolerances(items: tuple[str, ...] | list[str], option: str) -> dict[str, float]:
    """`0.01` (every metric, key "") and `acc=0.01` (one metric) into {key: tolerance}."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.rpartition("=")
        try:
            tol = float(value)
        except ValueError:
            raise InvalidParameterValue(f"{option} {item!r}: not a number") from None
        if not math.isfinite(tol) or tol < 0:
            raise InvalidParameterValue(f"{option} {item!r}: must be a finite number >= 0")
        out[key if sep else ""] = tol
    return out


def resolve_target(client: TrackingClient, target: str) -> str:
    """The run id behind a run id, `name@vX.Y.Z` or `models:/name/<version|stage|@alias>`."""
    if _RUN_ID.match(target):
        return target
    from gitml.registry.access import Registry

    registry = Registry(client._tracker.repo)
    run_id: Any = None
    m = _SEMVER.match(target)
    if m:
        model = registry.state().models.get(m.group("name"))
        version = model.versions.get(m.group("ver")) if model is not None else None
        if version is None or not version.active:
            raise ResourceDoesNotExist(f"no registered version {target}")
        run_id = version.meta.get("run_id")
    elif target.startswith("models:/"):
        from gitml.registry.resolve import parse_models_uri, resolve_version

        _, version = resolve_version(registry, parse_models_uri(target))
        run_id = version.meta.get("run_id")
    else:
        raise InvalidParameterValue(f"{target!r} is not a run id, NAME@vX.Y.Z or models:/ URI")
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ResourceDoesNotExist(f"{target} records no run id: it was not logged by a gitml run")
    return run_id


def _record(client: TrackingClient, run: Run) -> dict[str, Any]:
    """What the run recorded about how it ran, checked field by field (it comes from the branch).

    Read from the run's tags (commit, diff hash, and the `gitml.project.run` record); the
    provenance.json artifact is read only when the record was too large for a tag.
    """
    run_id, tags = run.info.run_id, run.data.tags
    if C.TAG_PROJECT_CACHE_KEY not in tags:
        raise ResourceDoesNotExist(
            f"run {run_id} was not started by 'gitml run': nothing records how to run it again"
        )
    raw = tags.get(RECORD_TAG)
    try:
        if raw is None:
            path = Path(client.download_artifacts(run_id, PROVENANCE_FILE))
            if path.stat().st_size > _MAX_RECORD:
                raise InvalidParameterValue(f"run {run_id}: {PROVENANCE_FILE} is too large")
            rec = json.loads(path.read_text(encoding="utf-8", errors="replace")).get("run")
        else:
            rec = json.loads(raw)
    except (ValueError, AttributeError) as e:
        raise InvalidParameterValue(f"run {run_id}: the recorded run is not a JSON record") from e
    if not isinstance(rec, dict):
        raise InvalidParameterValue(f"run {run_id}: the recorded run is not a mapping")
    commit, project_dir = tags.get(C.TAG_GIT_COMMIT), rec.get("project_dir", ".")
    if not isinstance(commit, str) or not _SHA.match(commit):
        raise InvalidParameterValue(f"run {run_id}: recorded commit {commit!r} is not a commit id")
    if (
        not isinstance(project_dir, str)
        or project_dir.startswith(("/", "-"))
        or ".." in Path(project_dir).parts
        or "\0" in project_dir
    ):
        raise InvalidParameterValue(
            f"run {run_id}: recorded project folder {project_dir!r} is not a relative path"
        )
    entry, given = rec.get("entry_point"), rec.get("given")
    manager = rec.get("env_manager", "local")
    if not isinstance(entry, str) or not entry or entry.startswith("-") or "\0" in entry:
        raise InvalidParameterValue(f"run {run_id}: recorded entry point {entry!r} is invalid")
    if not isinstance(given, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in given.items()
    ):
        raise InvalidParameterValue(f"run {run_id}: recorded parameters are not a map of strings")
    if manager not in ENV_MANAGERS:
        raise InvalidParameterValue(f"run {run_id}: recorded env manager {manager!r} is unknown")
    diff = tags.get(C.TAG_PROV_DIFF_SHA256)
    if diff is not None and not re.fullmatch(r"[0-9a-f]{64}", diff):
        raise InvalidParameterValue(f"run {run_id}: recorded diff hash {diff!r} is not a sha256")
    return {
        "commit": commit,
        "project_dir": project_dir,
        "entry": entry,
        "given": given,
        "manager": manager,
        "diff": diff,
        **_docker_record(run_id, rec, tags, manager),
    }


def _docker_record(
    run_id: str, rec: dict[str, Any], tags: dict[str, str], manager: str
) -> dict[str, Any]:
    """The image a docker run ran in (its id becomes an argument of `docker`: checked whole)."""
    if manager != "docker":
        return {"image_id": None, "build_image": False, "image_digest": None}
    docker = rec.get("docker")
    if docker is None:  # recorded before the record held it: MLflow's tag has the id
        docker = {"image_id": tags.get(C.TAG_DOCKER_IMAGE_ID), "build_image": False}
    if not isinstance(docker, dict):
        raise InvalidParameterValue(f"run {run_id}: the recorded docker image is not a mapping")
    image_id, build = docker.get("image_id"), docker.get("build_image", False)
    if not isinstance(image_id, str) or not _IMAGE_ID.fullmatch(image_id):
        raise InvalidParameterValue(
            f"run {run_id}: recorded image id {str(image_id)[:80]!r} is not sha256:<64 hex>"
        )
    if not isinstance(build, bool):
        raise InvalidParameterValue(f"run {run_id}: recorded build_image {build!r} is not a bool")
    digest = docker.get("image_digest")
    if digest is not None and not is_repo_digest(digest):
        raise InvalidParameterValue(
            f"run {run_id}: recorded image digest {str(digest)[:80]!r} is not name@sha256:<64 hex>"
        )
    return {"image_id": image_id, "build_image": build, "image_digest": digest}


def _git(
    root: Path, *args: str, check: str | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, input=stdin)
    if check and proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise InvalidParameterValue(f"{check}: {msg[0]}")
    return proc


def _pull_data(worktree: Path, main_root: Path) -> None:
    """`dvc pull` in the worktree, sharing the main checkout's DVC cache."""
    if not (worktree / ".dvc").is_dir():
        return
    cache = main_root / ".dvc" / "cache"
    if cache.is_dir():
        with open(worktree / ".dvc" / "config.local", "a", encoding="utf-8") as f:
            f.write(f"[cache]\n    dir = {cache}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "pull", "-q"], cwd=worktree, capture_output=True, text=True
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["dvc pull failed"]
        raise RemoteError(f"the run's data could not be fetched from the DVC remote: {tail[0]}")


def reproduce(
    target: str,
    rtol: dict[str, float] | None = None,
    atol: dict[str, float] | None = None,
    env_manager: str | None = None,
    keep: bool = False,
    timeout: float | None = None,
    tracking_uri: str | None = None,
    on_event: Callable[[str], None] | None = None,
) -> ReproduceResult:
    """Re-run `target` in a throw-away worktree and compare its metrics with the original's."""
    from gitml.projects.runner import _client
    from gitml.projects.runner import run as run_project

    say = on_event or (lambda _m: None)
    client = _client(tracking_uri)
    root: Path = client._tracker.root
    run_id = resolve_target(client, target)
    original = client.get_run(run_id)
    rec = _record(client, original)
    if _git(root, "cat-file", "-e", f"{rec['commit']}^{{commit}}").returncode != 0:
        branch = original.data.tags.get(C.TAG_GIT_BRANCH)
        hint = f"git fetch origin {branch}" if branch else "git fetch --all"
        raise ResourceDoesNotExist(
            f"commit {rec['commit'][:12]} of run {run_id} is not in this clone: {hint}"
        )
    patch = b""
    if rec["diff"]:
        patch = Path(client.download_artifacts(run_id, PATCH_FILE)).read_bytes()
        if hashlib.sha256(patch).hexdigest() != rec["diff"]:
            raise InvalidParameterValue(
                f"run {run_id}: the stored patch does not match its recorded hash"
            )
    holder = Path(tempfile.mkdtemp(prefix="gitml-reproduce-"))
    worktree = holder / "src"
    _git(
        root,
        "worktree",
        "add",
        "--detach",
        "-q",
        str(worktree),
        rec["commit"],
        check="git worktree add",
    )
    try:
        if patch:
            _git(
                worktree,
                "apply",
                "--binary",
                "--whitespace=nowarn",
                "-",
                check="applying the recorded patch",
                stdin=patch,
            )
        _pull_data(worktree, root)
        in_docker = (env_manager or rec["manager"]) == "docker"
        say(f"reproducing {run_id} at {rec['commit'][:12]}" + (" with its patch" if patch else ""))
        result = run_project(
            worktree / rec["project_dir"],
            entry_point=rec["entry"],
            parameters=rec["given"],
            experiment_id=original.info.experiment_id,
            env_manager=env_manager or rec["manager"],
            build_image=rec["build_image"] and in_docker,
            docker_image=rec["image_id"] if in_docker else None,
            docker_digest=rec["image_digest"] if in_docker else None,
            tracking_uri=str(root),
            timeout=timeout,
            extra_tags={C.TAG_REPRODUCES: run_id},
            on_event=say,
        )
    finally:
        if not keep:
            _git(root, "worktree", "remove", "--force", str(worktree))
            shutil.rmtree(holder, ignore_errors=True)
    new = client.get_run(result.run_id)
    rtol, atol = rtol or {}, atol or {}
    keys = sorted(set(original.data.metrics) | set(new.data.metrics))
    rows = [
        MetricDelta(
            k,
            original.data.metrics.get(k),
            new.data.metrics.get(k),
            rtol.get(k, rtol.get("", 0.0)),
            atol.get(k, atol.get("", 0.0)),
        )
        for k in keys
    ]
    checks = {}
    for label, tag in (
        ("code", C.TAG_PROV_CODE_TREE),
        ("data", C.TAG_PROV_DATA_SHA256),
        ("packages", C.TAG_PROV_PACKAGES_SHA256),
        ("image", C.TAG_DOCKER_IMAGE_ID),
    ):
        a, b = original.data.tags.get(tag), new.data.tags.get(tag)
        if a is not None and b is not None:
            checks[label] = a == b
    built = [r.data.tags.get(C.TAG_DOCKER_BUILD) for r in (original, new)]
    if checks.get("image") is False and built[0] and built[0] == built[1]:
        checks["image"] = True  # rebuilt from the same base image and files
    return ReproduceResult(
        run_id,
        result.run_id,
        result.status,
        result.returncode,
        rows,
        str(worktree) if keep else None,
        checks,
    )

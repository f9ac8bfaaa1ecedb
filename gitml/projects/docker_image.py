"""The image a docker run runs in: the `docker_env` image itself, or a project image built on it.

As `mlflow run`: without `--build-image` the `docker_env` image runs as it is (reused when
the engine has it, pulled otherwise). With `--build-image`, a project image is built on
top of it with the project's files copied to MLflow's `/mlflow/projects/code/`, which is
also its working directory, so the image alone holds the code that ran.

The files copied are the ones Git sees in the project folder (tracked and untracked, not
ignored; ignored data and outputs stay out). A content hash of (the base image's id, each
file's path, mode and bytes) tags the image (`<project name>:<hash[:12]>`) and is kept in
a label; an image whose label matches is reused without building. The id of the image
that runs (`sha256:...`) is what provenance records, and what `gitml reproduce` asks the
engine for first; for an image that came from a registry, its repository digest
(`name@sha256:...`) is recorded too, and reproduce pulls by it when the id is gone.

The base image name reaches the Dockerfile only after `docker_env` validated it as a
Docker reference (no whitespace, no newline); everything else in the Dockerfile is ours.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitml.exceptions import GitMLError, InvalidParameterValue
from gitml.projects.docker import IMAGE_REFERENCE, DockerEnv, engine, image_id

__all__ = [
    "BUILD_WORKDIR",
    "CONTENT_LABEL",
    "ProjectImage",
    "content_hash",
    "find_image",
    "is_repo_digest",
    "project_files",
    "project_image",
    "repository_name",
]

BUILD_WORKDIR = "/mlflow/projects/code"  # MLflow's path for the code in a built image
CONTENT_LABEL = "org.gitml.project.content"
_HASH_FORMAT = b"gitml-docker-build/1"
_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
_SPOOL_BYTES = 64 << 20


@dataclass(frozen=True)
class ProjectImage:
    """The image a step runs in, and what provenance records about it."""

    image_id: str  # what `docker run` gets: the id, so a moved tag cannot change it
    uri: str  # MLflow's `mlflow.docker.image.uri`: the built tag, or the docker_env image
    base: str  # the docker_env image
    base_id: str | None
    built: bool = False
    content: str | None = None  # the content hash of a built image
    reused: bool = False  # an image already on the engine (no build)
    digest: str | None = None  # `name@sha256:...` when the image came from a registry

    @property
    def workdir(self) -> str | None:
        """The container's working directory: the copied code of a built image."""
        return BUILD_WORKDIR if self.built else None

    def provenance(self) -> dict[str, str]:
        """The fields of provenance's `env` (the image id stands for the whole environment)."""
        out = {
            "env_manager": "docker",
            "env_hash": self.image_id,
            "image_id": self.image_id,
            "image": self.base,
            "image_uri": self.uri,
            "build_image": "true" if self.built else "false",
        }
        if self.base_id:
            out["base_image_id"] = self.base_id
        if self.content:
            out["build_sha256"] = self.content
        if self.digest:
            out["image_digest"] = self.digest
        return out


def repository_name(project_name: str | None) -> str:
    """A Docker repository name from the project's name (MLflow tags built images with it)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", (project_name or "").lower())
    name = re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", name)[:100]
    return name or "gitml-project"


def project_files(folder: Path) -> list[str]:
    """The files Git sees in `folder` (tracked and untracked, not ignored), relative to it."""
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "."],
        cwd=folder,
        capture_output=True,
    )
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise InvalidParameterValue(f"cannot list the project's files: {tail[0]}")
    out = []
    for raw in dict.fromkeys(proc.stdout.split(b"\0")):
        rel = os.fsdecode(raw)
        path = folder / rel
        if rel and (path.is_symlink() or path.is_file()):  # deleted files and submodules: no
            out.append(rel)
    return sorted(out)


def content_hash(base_id: str, folder: Path, files: list[str]) -> str:
    """sha256 over the base image's id and each file's path, mode and content."""
    h = hashlib.sha256(_HASH_FORMAT + b"\0" + base_id.encode() + b"\0")
    for rel in files:
        path = folder / rel
        if path.is_symlink():
            mode, digest = "l", hashlib.sha256(os.fsencode(os.readlink(path))).hexdigest()
        else:
            mode = "x" if os.access(path, os.X_OK) else "f"
            file_hash = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    file_hash.update(chunk)
            digest = file_hash.hexdigest()
        h.update(os.fsencode(rel) + b"\0" + mode.encode() + b"\0" + digest.encode() + b"\n")
    return h.hexdigest()


def _dockerfile(base: str, content: str, base_id: str) -> bytes:
    return (
        f"FROM {base}\n"
        f"COPY code/ {BUILD_WORKDIR}/\n"
        f"WORKDIR {BUILD_WORKDIR}\n"
        f'LABEL {CONTENT_LABEL}="{content}" org.gitml.project.base="{base_id}"\n'
    ).encode()


def _context(folder: Path, files: list[str], dockerfile: bytes) -> Any:
    """The build context as a tar: the Dockerfile, and the project's files under code/."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 (returned)
    with tarfile.open(fileobj=spool, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        for rel in files:
            info = tar.gettarinfo(str(folder / rel), arcname=f"code/{rel}")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isreg():
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                with open(folder / rel, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    spool.seek(0)
    return spool


def find_image(ref: str, env: dict[str, str]) -> tuple[str, str] | None:
    """(id, content label) of an image on the engine, or None when it has no such image."""
    proc = subprocess.run(
        [
            engine(env),
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{json .Config.Labels}}",
            "--",
            ref,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        return None
    found, _, raw = proc.stdout.strip().partition(" ")
    if not _IMAGE_ID.fullmatch(found):
        return None
    try:
        labels = json.loads(raw or "null")
    except ValueError:
        labels = None
    label = labels.get(CONTENT_LABEL) if isinstance(labels, dict) else None
    return found, label if isinstance(label, str) else ""


def is_repo_digest(value: object) -> bool:
    """A registry reference by digest (`name@sha256:<64 hex>`), safe as one docker argument."""
    return (
        isinstance(value, str)
        and IMAGE_REFERENCE.fullmatch(value) is not None
        and re.search(r"@sha256:[0-9a-f]{64}$", value) is not None
    )


def _repository(image: str) -> str:
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _repo_digest(image_id_: str, image: str, env: dict[str, str]) -> str | None:
    """The registry digest of the docker_env image (pulled from or pushed to a registry)."""
    proc = subprocess.run(
        [engine(env), "image", "inspect", "--format", "{{json .RepoDigests}}", "--", image_id_],
        capture_output=True,
        text=True,
        env=env,
    )
    try:
        digests = json.loads(proc.stdout or "null") if proc.returncode == 0 else None
    except ValueError:
        return None
    if not isinstance(digests, list):
        return None
    valid = [d for d in digests if is_repo_digest(d)]
    same = [d for d in valid if _repository(d) == _repository(image)]
    return (same or valid or [None])[0]


def _pull_digest(digest: str, want_id: str, env: dict[str, str]) -> bool:
    """Pull the recorded image by its digest; True when the engine then has `want_id`."""
    proc = subprocess.run(
        [engine(env), "pull", "--quiet", "--", digest], capture_output=True, text=True, env=env
    )
    found = find_image(digest, env) if proc.returncode == 0 else None
    return found is not None and found[0] == want_id


def _build(tag: str, context: Any, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [engine(env), "build", "--quiet", "--force-rm", "--tag", tag, "-"],
        stdin=context,
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        lines = [
            ln.strip()
            for ln in (proc.stderr + "\n" + proc.stdout).splitlines()
            if ln.strip() and "legacy builder" not in ln and "buildx" not in ln.lower()
        ]
        raise GitMLError(
            f"building the project image {tag} failed: {lines[-1] if lines else 'docker build failed'}"
        )


def project_image(
    denv: DockerEnv,
    folder: Path,
    env: dict[str, str],
    build: bool = False,
    project_name: str | None = None,
    want_id: str | None = None,
    say: Callable[[str], None] | None = None,
    want_digest: str | None = None,
) -> ProjectImage:
    """The image to run: `want_id` when the engine still has it (or, not built, once pulled
    by `want_digest`), else the docker_env image, or (with `build`) the project image built
    on it, reused when its content is unchanged."""
    note = say or (lambda _m: None)
    if want_id is not None:
        if not _IMAGE_ID.fullmatch(want_id):
            raise InvalidParameterValue(f"{want_id!r} is not a Docker image id (sha256:...)")
        found = find_image(want_id, env)
        if found is not None and found[0] == want_id:
            note(f"using the recorded image {want_id[:19]}")
            uri = denv.image
            if build and found[1]:
                uri = f"{repository_name(project_name)}:{found[1][:12]}"
            digest = None if build else want_digest
            return ProjectImage(
                want_id, uri, denv.image, None, build, found[1] or None, True, digest
            )
        if not build and want_digest is not None:
            if not is_repo_digest(want_digest):
                raise InvalidParameterValue(
                    f"{want_digest!r} is not an image digest (name@sha256:...)"
                )
            if _pull_digest(want_digest, want_id, env):
                note(f"pulled the recorded image by its digest {want_digest}")
                return ProjectImage(
                    want_id, denv.image, denv.image, None, digest=want_digest, reused=False
                )
        note(
            f"the recorded image {want_id[:19]} is not on this engine: "
            + ("building it again from the recorded commit" if build else f"using {denv.image}")
        )
    base_id = image_id(denv, env)
    if not build:
        digest = _repo_digest(base_id, denv.image, env)
        return ProjectImage(base_id, denv.image, denv.image, base_id, reused=True, digest=digest)
    files = project_files(folder)
    content = content_hash(base_id, folder, files)
    tag = f"{repository_name(project_name)}:{content[:12]}"
    found = find_image(tag, env)
    if found is not None and found[1] == content:
        note(f"reusing project image {tag}")
        return ProjectImage(found[0], tag, denv.image, base_id, True, content, True)
    note(f"=== Building docker image {tag} ({len(files)} files on {denv.image}) ===")
    with _context(folder, files, _dockerfile(denv.image, content, base_id)) as context:
        _build(tag, context, env)
    built = find_image(tag, env)
    if built is None or built[1] != content:
        raise GitMLError(f"building the project image {tag} failed: the engine does not have it")
    return ProjectImage(built[0], tag, denv.image, base_id, True, content)

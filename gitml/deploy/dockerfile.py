"""Model images: a Dockerfile and its build context for one model version, and the build.

The layers run from what changes least to what changes most: the base, gitml and the
model's requirements, then the model folder last, so a retrained model rebuilds one layer.
The image runs as a non-root user, answers a HEALTHCHECK on /ping, and carries OCI labels
naming the model version, run and source commit.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitml.deploy.kubernetes import MODEL_DIR, RUN_AS, SERVE_PORT
from gitml.deploy.target import DeployTarget
from gitml.exceptions import InvalidParameterValue, InvalidState, RemoteError

if TYPE_CHECKING:
    from gitml.models.flavors.spec import FlavorSpec

__all__ = [
    "DEFAULT_BASE_IMAGE",
    "ImageOptions",
    "build_image",
    "dockerfile_text",
    "image_reference",
    "model_extras",
    "write_context",
]

DEFAULT_BASE_IMAGE = "python:3.11-slim"
_WHEELS = "wheels"
# Docker's reference grammar, simplified: [registry/]path[:tag][@digest], lowercase path.
_REFERENCE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_PIP_SPEC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],<>=!~ ]*$")


@dataclass(frozen=True)
class ImageOptions:
    """Choices for the image: base, how gitml is installed, where packages come from."""

    base_image: str = DEFAULT_BASE_IMAGE
    gitml_requirement: str | None = None  # default: gitml with the extras the model's flavors need
    wheelhouse: Path | None = None  # a folder of wheels: installs offline from it alone
    index_url: str | None = None  # a local package index
    extra_labels: dict[str, str] = field(default_factory=dict)


def image_reference(text: str) -> str:
    """Check an image name the way Docker reads it; refuse what would parse as an option."""
    if not isinstance(text, str) or not _REFERENCE.match(text) or len(text) > 255:
        raise InvalidParameterValue(
            f"{text!r} is not a Docker image name (lowercase name[:tag], e.g. fraud-model:1.4.0)"
        )
    return text


def _label_value(value: str) -> str:
    if any(c in value for c in "\n\r\0"):
        raise InvalidParameterValue(f"label value {value!r} holds a line break")
    return json.dumps(value)  # a double-quoted string, as the Dockerfile LABEL syntax reads it


def _model_flavors(model_dir: Path) -> list[FlavorSpec]:
    """The registered flavors a model folder's MLmodel names, read with the bounded loader
    every file from a remote goes through (size, depth, no YAML aliases)."""
    from gitml.exceptions import GitMLError
    from gitml.models.flavors import flavors
    from gitml.store.bounded import load_yaml

    try:
        data = load_yaml((model_dir / "MLmodel").read_bytes(), "MLmodel")
    except (OSError, GitMLError):
        data = None
    sections = data.get("flavors") if isinstance(data, dict) else None
    names = set(sections) if isinstance(sections, dict) else set()
    return [spec for spec in flavors() if names & set(spec.mlmodel_names)]


def model_extras(model_dir: Path) -> list[str]:
    """gitml's extras for a model folder's flavors: `serve`, and each flavor's declared extra
    (the flavor registry's; pyfunc needs none beyond serving)."""
    return sorted({"serve"} | {s.extra for s in _model_flavors(model_dir) if s.extra})


# The environment without its installers and the packages' own test suites (folders named
# `tests` inside a package; a top-level package of that name is left alone).
_TRIM = (
    "python -m pip uninstall --yes --quiet pip setuptools wheel 2>/dev/null; "
    "find /opt/gitml/venv/lib -mindepth 4 -type d -name tests -prune -exec rm -rf {} +"
)


def dockerfile_text(target: DeployTarget, opts: ImageOptions, extras: list[str] | None = None) -> str:
    """The Dockerfile for `target`, its build context laid out by write_context."""
    requirement = opts.gitml_requirement or f"gitml[{','.join(extras or ['serve'])}]"
    if not _PIP_SPEC.match(requirement):
        raise InvalidParameterValue(f"not a pip requirement: {requirement!r}")
    if opts.wheelhouse is not None:
        source = f"--no-index --find-links /opt/gitml/{_WHEELS}"
    elif opts.index_url is not None:
        if not re.match(r"^(https?|file)://[^\s\"']+$", opts.index_url):
            raise InvalidParameterValue(f"--index-url {opts.index_url!r} is not an http(s) or file URL")
        source = f"--index-url {opts.index_url}"
    else:
        source = ""
    labels = {
        "org.opencontainers.image.title": target.name,
        "org.opencontainers.image.version": target.semver,
        "org.opencontainers.image.revision": target.git_commit,
        "org.opencontainers.image.description": f"gitml model server for {target.model_uri}",
        **{f"dev.gitml.{k}": v for k, v in target.labels().items()},
        "dev.gitml.model-uri": target.model_uri,
        **opts.extra_labels,
    }
    label_lines = " \\\n      ".join(f"{k}={_label_value(v)}" for k, v in labels.items())
    pip = f"python -m pip install --no-cache-dir --disable-pip-version-check {source}".rstrip()
    probe = (
        "import sys, urllib.request; "
        f"sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{SERVE_PORT}/ping', timeout=3).status == 200 else 1)"
    )
    wheel_copy = f"COPY {_WHEELS}/ /opt/gitml/{_WHEELS}/\n" if opts.wheelhouse is not None else ""
    return f"""# Written by gitml for {target.model_uri} ({target.git_tag}); rebuild with
#   gitml models build-docker -m {target.requested} -n IMAGE
ARG BASE_IMAGE={opts.base_image}

# Stage 1: gitml and the model's requirements in a virtual environment (a venv works on
# python:*-slim and on distribution images whose system Python refuses pip, PEP 668).
FROM ${{BASE_IMAGE}} AS deps
ENV PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/gitml/venv
ENV PATH=/opt/gitml/venv/bin:$PATH
{wheel_copy}COPY requirements.txt /opt/gitml/requirements.txt
RUN {pip} "{requirement}" -r /opt/gitml/requirements.txt
# What only installing and testing need stays behind: pip and setuptools, and the test
# suites installed packages carry (NumPy's, SciPy's and scikit-learn's: about 70 MB).
RUN {_TRIM}

# Stage 2: the environment without the wheels it came from, then the model, last: a retrained
# model with the same requirements reuses every layer but the model's.
FROM ${{BASE_IMAGE}}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/home/gitml PATH=/opt/gitml/venv/bin:$PATH
RUN (getent group {RUN_AS} || groupadd --gid {RUN_AS} gitml) \\
 && (getent passwd {RUN_AS} || useradd --uid {RUN_AS} --gid {RUN_AS} --home-dir /home/gitml --create-home --shell /usr/sbin/nologin gitml)
COPY --from=deps /opt/gitml/venv /opt/gitml/venv
COPY --chown={RUN_AS}:{RUN_AS} model/ {MODEL_DIR}/
WORKDIR /opt/gitml
LABEL {label_lines}
USER {RUN_AS}:{RUN_AS}
EXPOSE {SERVE_PORT}
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \\
  CMD ["python", "-c", {json.dumps(probe)}]
ENTRYPOINT ["gitml"]
CMD ["models", "serve", "-m", "{MODEL_DIR}", "--host", "0.0.0.0", "--port", "{SERVE_PORT}"]
"""


def _requirements(model_dir: Path) -> str:
    """The model's requirements.txt, plain specs only, then what its flavors declare."""
    path = model_dir / "requirements.txt"
    text = path.read_text(errors="replace") if path.is_file() else ""
    declared = [r for spec in _model_flavors(model_dir) for r in spec.requirements]
    lines: list[str] = []
    for raw in [*text.splitlines()[:500], *declared]:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        # A model folder comes from the artifact remote: options (-e, --index-url, -r ...)
        # and URLs in it could point pip anywhere, so only plain requirement specs pass.
        if line.startswith("-") or "://" in line or not _PIP_SPEC.match(line.split(";")[0].strip()):
            raise InvalidParameterValue(f"the model's requirements.txt holds {line!r}, which is not a plain requirement")
        lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def write_context(target: DeployTarget, model_dir: Path, out_dir: Path, opts: ImageOptions) -> Path:
    """Lay out a build context in `out_dir`: Dockerfile, requirements.txt, model/, wheels/."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = dockerfile_text(target, opts, model_extras(model_dir))
    (out / "requirements.txt").write_text(_requirements(model_dir))
    dest = out / "model"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(model_dir, dest, symlinks=False)
    if opts.wheelhouse is not None:
        wheels = out / _WHEELS
        if wheels.exists():
            shutil.rmtree(wheels)
        shutil.copytree(opts.wheelhouse, wheels)
    (out / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n")
    (out / "Dockerfile").write_text(text)
    return out / "Dockerfile"


def build_image(context: Path, image: str, base_image: str | None = None, docker: str = "docker") -> str:
    """`docker build` the context; returns the image id. A missing engine is a clear error."""
    image_reference(image)
    exe = shutil.which(docker)
    if exe is None:
        raise InvalidState(f"docker is not installed; the Dockerfile is written in {context}: build it with any OCI builder")
    args = [exe, "build", "--quiet", "--tag", image]
    if base_image is not None:
        args += ["--build-arg", f"BASE_IMAGE={image_reference(base_image)}"]
    args += ["--", str(context)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        detail = " | ".join(lines[-3:]) or f"exit {proc.returncode}"
        if "Cannot connect to the Docker daemon" in proc.stderr or "docker.sock" in proc.stderr:
            raise InvalidState(
                f"no Docker engine answers ({detail}); the Dockerfile is written in {context}"
            )
        raise RemoteError(f"docker build failed: {detail}")
    return proc.stdout.strip()

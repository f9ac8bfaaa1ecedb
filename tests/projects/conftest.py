"""Fixtures for project tests: the deploy tests' Docker engine (one per session), and an
image on it holding this checkout's gitml, for logging from inside a container."""

from __future__ import annotations

import importlib.metadata as md
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import BASE_IMAGE, REPO_ROOT, docker_engine  # noqa: F401

__all__: list[str] = []

GITML_IMAGE = "gitml-test-gitml:session"


def _core_distributions() -> list[Any]:
    """gitml's required distributions and theirs, as installed here (extras left out)."""
    import tomllib
    from packaging.requirements import Requirement

    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    seen: dict[str, Any] = {}
    todo = [Requirement(d) for d in deps]
    while todo:
        req = todo.pop()
        name = req.name.lower().replace("_", "-")
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        dist = md.distribution(req.name)
        seen[name] = dist
        todo += [Requirement(r) for r in dist.requires or []]
    return list(seen.values())


def stage_gitml(dest: Path) -> None:
    """A build context: gitml from this checkout and its core dependencies copied from this
    interpreter's site-packages (the same CPython minor and glibc as the Debian base image,
    so no registry is needed), and this machine's `git` (gitml reads and writes the
    repository through it; the base image has none)."""
    site = dest / "site"
    for dist in _core_distributions():
        for rel in dist.files or []:
            src = Path(str(dist.locate_file(rel)))
            if ".." in rel.parts or "__pycache__" in rel.parts or not src.is_file():
                continue  # console scripts live outside site-packages
            (site / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, site / rel)
    shutil.copytree(
        REPO_ROOT / "gitml", site / "gitml", ignore=shutil.ignore_patterns("__pycache__")
    )
    (dest / "bin").mkdir()
    shutil.copy2(shutil.which("git") or "/usr/bin/git", dest / "bin" / "git")
    (dest / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\n"
        "COPY bin/git /usr/local/bin/git\n"
        "COPY site /opt/gitml-site\n"
        "ENV PYTHONPATH=/opt/gitml-site\n"
    )


@pytest.fixture(scope="session")
def gitml_image(docker_engine: Any) -> str:  # noqa: F811
    """An image with python3, git and this checkout's gitml (built once per session)."""
    if sys.version_info[:2] != (3, 11):
        pytest.skip(
            "the gitml image copies this interpreter's packages: it needs CPython 3.11 (bookworm's)"
        )
    if shutil.which("git") is None:
        pytest.skip("no git on this machine to copy into the image")
    with tempfile.TemporaryDirectory(prefix="gitml-image-") as tmp:
        stage_gitml(Path(tmp))
        docker_engine.docker("build", "--quiet", "--tag", GITML_IMAGE, tmp, timeout=300)
    return GITML_IMAGE

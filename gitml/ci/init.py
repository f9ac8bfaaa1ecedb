"""`gitml ci init`: write the pipeline files, never over a file gitml did not write.

A generated file's first line holds the marker (`gitml:generated`) and the choices it was
made with; a file without it is the user's and is left alone unless `force`. Every check
happens before the first write, so a refused init writes nothing.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gitml.ci.github import github_files
from gitml.ci.gitlab import gitlab_files
from gitml.ci.options import MARKER, InitOptions
from gitml.exceptions import InvalidParameterValue, ResourceAlreadyExists

__all__ = [
    "PLATFORMS",
    "InitResult",
    "generated_files",
    "init_pipelines",
    "is_generated",
    "settings_notes",
]

PLATFORMS = ("github", "gitlab")
_OPTIONAL = {".github/actionlint.yaml"}  # the user's own config wins; gitml's is a convenience


@dataclass(frozen=True)
class InitResult:
    """What init did: each path with "created", "updated", "unchanged" or "kept (yours)"."""

    platform: str
    files: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]


def generated_files(platform: str, options: InitOptions) -> dict[str, str]:
    """{path relative to the repository: text} of the files for `platform`."""
    if platform == "github":
        return github_files(options)
    if platform == "gitlab":
        return gitlab_files(options)
    raise InvalidParameterValue(f"unknown CI platform {platform!r}: use github or gitlab")


def is_generated(text: str) -> bool:
    """Whether a file's first line carries gitml's marker."""
    first = text.split("\n", 1)[0]
    return first.startswith("#") and MARKER in first


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def init_pipelines(
    root: Path | str, platform: str, options: InitOptions, force: bool = False
) -> InitResult:
    """Write the pipeline files for `platform` into the repository at `root`."""
    root = Path(root)
    files = generated_files(platform, options)
    plan: list[tuple[str, str, str | None]] = []  # (path, action, text to write)
    refused = []
    for rel, text in files.items():
        path = root / rel
        try:
            old = path.read_text(encoding="utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError):
            old = ""
        if old is None:
            plan.append((rel, "created", text))
        elif old == text:
            plan.append((rel, "unchanged", None))
        elif is_generated(old) or force:
            plan.append((rel, "updated", text))
        elif rel in _OPTIONAL:
            plan.append((rel, "kept (yours)", None))
        else:
            refused.append(rel)
    if refused:
        raise ResourceAlreadyExists(
            f"{', '.join(refused)} exists and was not written by gitml: move it away, or pass "
            "--force to overwrite it"
        )
    for rel, _, new in plan:
        if new is not None:
            _write(root / rel, new)
    return InitResult(
        platform, tuple((rel, action) for rel, action, _ in plan), settings_notes(platform, options)
    )


def settings_notes(platform: str, o: InitOptions) -> tuple[str, ...]:
    """The secrets and settings the user must add for the pipelines to work."""
    labels = ", ".join(o.gpu_runner)
    if platform == "github":
        notes = [
            f"Register a self-hosted runner with the labels [{labels}] (Settings > Actions > Runners).",
            "Keep 'Require approval for fork pull request workflows' on: a fork's code runs on that runner.",
            f"Create the environment '{o.environment}' (Settings > Environments) with the secrets your deploy command needs.",
            "Make the 'Run and report' check required (branch protection) so crossed metric gates block merging.",
            "Tags pushed with the Actions GITHUB_TOKEN start no workflow: a promotion made inside CI "
            "must run `gh workflow run gitml-deploy.yml -f model=NAME`.",
            "No other secret is needed: each job asks for its own GITHUB_TOKEN permissions.",
        ]
        if o.deploy_command == InitOptions().deploy_command:
            notes.append(
                'The deploy step runs `gitml deploy k8s -m "$GITML_MODEL_URI" -o k8s --apply`; pass --deploy-command to run yours.'
            )
        return tuple(notes)
    notes = [
        "Add a masked CI/CD variable GITLAB_TOKEN: a project access token with the api and "
        "write_repository scopes and the Developer role (the job token cannot write merge-request "
        "notes, nor push the metadata branch).",
        f"Register a runner with the tags [{labels}] for the training job.",
        f"The deploy job uses the environment '{o.environment}' and the resource group gitml-deploy "
        "(one deployment at a time).",
        "Protect the registry tags (Settings > Repository > Protected tags) so only maintainers promote.",
        "The merge-request metrics widget (metrics.txt) needs GitLab Premium; the note works on every tier.",
    ]
    return tuple(notes)

"""What `gitml ci init` is told (validated once), and the quoting its templates use."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from gitml.ci.gates import parse_gate
from gitml.exceptions import InvalidParameterValue

__all__ = [
    "MARKER",
    "InitOptions",
    "marker_line",
    "q_shell",
    "q_yaml",
    "run_block",
]

MARKER = "gitml:generated"
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_LABEL = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")


def q_yaml(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(value)


def q_shell(value: str) -> str:
    """A POSIX shell word; plain when it needs no quoting."""
    return shlex.quote(value)


def run_block(command: str, indent: int) -> str:
    """`command`'s lines indented for a YAML block scalar (`run: |`)."""
    pad = " " * indent
    return "\n".join(
        pad + line if line.strip() else "" for line in command.strip("\n").splitlines()
    )


def _word(value: str, what: str) -> str:
    if not _WORD.fullmatch(value):
        raise InvalidParameterValue(
            f"{what} {value!r}: use letters, digits, '.', '_', '-' and '/' (at most 100)"
        )
    return value


@dataclass(frozen=True)
class InitOptions:
    """The choices a pipeline is generated from."""

    gpu_runner: tuple[str, ...] = ("self-hosted", "gpu")
    entry_point: str = "main"
    deploy_command: str = 'gitml deploy k8s -m "$GITML_MODEL_URI" -o k8s --apply'
    stage: str = "production"
    environment: str = "production"
    branch: str = "main"
    fail_on: tuple[str, ...] = ()
    register: str | None = None  # model name to register on the default branch
    artifact_path: str = "model"
    gitml_spec: str = "gitml"
    deploy_runner: str = "ubuntu-latest"

    def __post_init__(self) -> None:
        if not self.gpu_runner:
            raise InvalidParameterValue("--gpu-runner needs at least one label")
        for label in (*self.gpu_runner, self.deploy_runner):
            if not _LABEL.fullmatch(label):
                raise InvalidParameterValue(f"runner label {label!r} holds control characters")
        _word(self.entry_point, "entry point")
        _word(self.stage, "stage")
        _word(self.environment, "environment")
        _word(self.branch, "branch")
        _word(self.artifact_path, "artifact path")
        if self.register is not None:
            from gitml.registry.tags import validate_model_name

            validate_model_name(self.register)
        for gate in self.fail_on:
            parse_gate(gate)
            if "#" in gate or "'" in gate:  # a YAML comment or a quote inside generated lines
                raise InvalidParameterValue(f"gate {gate!r}: '#' and quotes are not allowed here")
        if not self.deploy_command.strip() or "\x00" in self.deploy_command:
            raise InvalidParameterValue("--deploy-command is empty")
        if not self.gitml_spec.strip() or "\n" in self.gitml_spec:
            raise InvalidParameterValue("--gitml-spec must be one pip requirement")

    def header(self) -> dict[str, object]:
        """What `gitml ci check` reads back from the marker line."""
        return {
            "entry_point": self.entry_point,
            "stage": self.stage,
            "environment": self.environment,
        }


def marker_line(o: InitOptions) -> str:
    """The first line of every generated file: says who wrote it and with which choices."""
    return (
        f"# {MARKER} by `gitml ci init`: regenerate with --force; `gitml ci check` checks it. "
        + json.dumps(o.header(), sort_keys=True)
    )

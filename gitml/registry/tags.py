"""The registry's tag grammar (GTO's): format and parse tag names, validate names, order versions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from gitml.exceptions import InvalidParameterValue

__all__ = [
    "MLFLOW_STAGES",
    "NAME_PATTERN",
    "Action",
    "TagName",
    "format_tag",
    "is_registry_tag",
    "mlflow_stage_of",
    "parse_tag",
    "semver_key",
    "semver_of_major",
    "stage_of_mlflow",
    "suggest_model_name",
    "validate_alias",
    "validate_model_name",
    "validate_stage",
]

# GTO's name grammar (gto/constants.py): letters, digits, '-', '_', '/', not starting or
# ending with a separator. One character is allowed, as GTO's regex allows it.
NAME_PATTERN = r"[a-zA-Z0-9]([a-zA-Z0-9\-/_]*[a-zA-Z0-9])?"
_SEMVER = (
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
# GTO also allows a "dirname=" prefix (artifacts declared in a sub-folder); it is part of
# the model's name here, written with ':' as GTO shows it.
_ARTIFACT = rf"(?:[a-zA-Z0-9\-_./]+=)?{NAME_PATTERN}"
_TAG_RE = re.compile(
    rf"^(?P<artifact>{_ARTIFACT})"
    rf"(?:(?:#(?P<stage>{NAME_PATTERN})|@(?P<version>v{_SEMVER}))(?P<cancel>!?)"
    rf"|@(?P<deprecated>deprecated))"
    rf"(?:#(?P<counter>[0-9]+))?$"
)
_NAME_RE = re.compile(rf"^{NAME_PATTERN}$")
_SEMVER_RE = re.compile(rf"^v{_SEMVER}$")
# Git refuses consecutive slashes in a ref name; GTO's regex alone would accept them.
_BAD_REF_PART = re.compile(r"//")


class Action(str, Enum):
    """What a registry tag records (GTO's actions)."""

    REGISTER = "register"
    DEREGISTER = "deregister"
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    DEPRECATE = "deprecate"


@dataclass(frozen=True, slots=True)
class TagName:
    """A parsed registry tag name: `model@v1.0.0`, `model#production#3`, `model@deprecated`..."""

    model: str
    action: Action
    version: str | None = None  # "v1.0.0" for register/deregister
    stage: str | None = None  # for assign/unassign
    counter: int | None = None  # GTO's "#N", counting events across the whole model


# MLflow's stages and the GTO stage names they are written as; 'None' is no stage at all.
MLFLOW_STAGES: dict[str, str] = {
    "Staging": "staging",
    "Production": "production",
    "Archived": "archived",
}
_GTO_TO_MLFLOW = {v: k for k, v in MLFLOW_STAGES.items()}


def format_tag(
    model: str,
    action: Action,
    version: str | None = None,
    stage: str | None = None,
    counter: int | None = None,
) -> str:
    """The tag name GTO would write for `action` (with `#counter` when given)."""
    artifact = model.replace(":", "=")
    if action is Action.REGISTER:
        body = f"{artifact}@{version}"
    elif action is Action.DEREGISTER:
        body = f"{artifact}@{version}!"
    elif action is Action.ASSIGN:
        body = f"{artifact}#{stage}"
    elif action is Action.UNASSIGN:
        body = f"{artifact}#{stage}!"
    else:
        body = f"{artifact}@deprecated"
    if (action in (Action.REGISTER, Action.DEREGISTER)) != (version is not None):
        raise InvalidParameterValue(
            f"a {action.value} tag needs a version exactly when it registers one"
        )
    if (action in (Action.ASSIGN, Action.UNASSIGN)) != (stage is not None):
        raise InvalidParameterValue(
            f"a {action.value} tag needs a stage exactly when it assigns one"
        )
    return body if counter is None else f"{body}#{counter}"


def parse_tag(name: str) -> TagName | None:
    """Parse a tag name in GTO's grammar; None when it is not a registry tag."""
    m = _TAG_RE.match(name)
    if m is None:
        return None
    model = m["artifact"].replace("=", ":")
    counter = int(m["counter"]) if m["counter"] is not None else None
    cancel = m["cancel"] == "!"
    if m["version"] is not None:
        action = Action.DEREGISTER if cancel else Action.REGISTER
        return TagName(model, action, version=m["version"], counter=counter)
    if m["stage"] is not None:
        action = Action.UNASSIGN if cancel else Action.ASSIGN
        return TagName(model, action, stage=m["stage"], counter=counter)
    return TagName(model, Action.DEPRECATE, counter=counter)


def is_registry_tag(name: str) -> bool:
    """Whether a tag name (without refs/tags/) is in GTO's grammar: the tags `gitml push` moves."""
    return parse_tag(name) is not None


def _check(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidParameterValue(f"{what} must be a non-empty string, got {value!r}")
    if not _NAME_RE.match(value) or ".." in value or _BAD_REF_PART.search(value):
        raise InvalidParameterValue(
            f"invalid {what} {value!r}: use letters, digits, '-', '_' and '/', "
            "starting and ending with a letter or digit (no '@', '#', spaces or '..')"
        )
    return value


def suggest_model_name(name: str) -> str | None:
    """A name the registry can hold that is closest to `name`: each run of other characters
    (spaces, dots, '@', '#', ...) becomes one '-', and separators are trimmed from the ends."""
    text = re.sub(r"[^a-zA-Z0-9\-/_]+", "-", name)
    text = re.sub(r"/{2,}", "/", text)
    text = re.sub(r"^[\-/_]+|[\-/_]+$", "", text)
    return text if text and _NAME_RE.match(text) else None


def validate_model_name(name: object) -> str:
    """Return `name` if it is a valid registered model name (GTO's grammar), else raise.

    The error names the rule, why it exists (each version is the Git tag `<name>@vN.0.0`,
    each stage `<name>#<stage>#N`) and the nearest name that fits.
    """
    if not isinstance(name, str) or not name:
        raise InvalidParameterValue(f"model name must be a non-empty string, got {name!r}")
    if _NAME_RE.match(name) and ".." not in name and not _BAD_REF_PART.search(name):
        return name
    suggestion = suggest_model_name(name)
    hint = f"; for example {suggestion!r}" if suggestion else ""
    raise InvalidParameterValue(
        f"invalid registered model name {name!r}: gitml's registry writes each model version as the "
        f"Git tag '<name>@v<N>.0.0' (MLflow version N) and each stage as '<name>#<stage>#<count>', "
        "in GTO's grammar, so a name may hold only letters, digits, '-', '_' and '/', must start "
        f"and end with a letter or digit, and cannot hold spaces, dots, '@', '#' or '//'{hint}"
    )


def validate_stage(stage: object) -> str:
    """Return `stage` if it is a valid GTO stage name, else raise."""
    return _check(stage, "stage")


def validate_alias(alias: object) -> str:
    """An alias is written as a GTO stage: valid stage, no '/', not an MLflow stage, not `latest` or `vN`."""
    value = _check(alias, "alias")
    if "/" in value:
        raise InvalidParameterValue(f"invalid alias {value!r}: '/' is not allowed in an alias")
    lowered = value.lower()
    if lowered in ("none", "latest") or lowered in _GTO_TO_MLFLOW or re.fullmatch(r"v\d+", lowered):
        raise InvalidParameterValue(
            f"invalid alias {value!r}: 'latest', 'vN' and the stage names None, Staging, "
            "Production and Archived are reserved"
        )
    return value


def stage_of_mlflow(stage: object) -> str | None:
    """The GTO stage for an MLflow stage name (case-insensitive); None for 'None'."""
    if isinstance(stage, str):
        lowered = stage.strip().lower()
        if lowered == "none":
            return None
        if lowered in _GTO_TO_MLFLOW:
            return lowered
    raise InvalidParameterValue(
        f"invalid stage {stage!r}: use one of None, Staging, Production, Archived"
    )


def mlflow_stage_of(gto_stage: str) -> str | None:
    """The MLflow stage a GTO stage stands for, or None when it is an alias."""
    return _GTO_TO_MLFLOW.get(gto_stage)


def _pre_key(pre: str) -> tuple[tuple[int, int, str], ...]:
    # Semver precedence: numeric identifiers compare as numbers and sort before others.
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...], str]:
    """A sort key giving semver precedence (a release sorts after its pre-releases)."""
    m = _SEMVER_RE.match(version)
    if m is None:
        raise InvalidParameterValue(f"{version!r} is not a semantic version like v1.0.0")
    pre = m["pre"]
    return (
        int(m["major"]),
        int(m["minor"]),
        int(m["patch"]),
        0 if pre else 1,
        _pre_key(pre) if pre else (),
        version,  # build metadata has no precedence: keep the order total and stable
    )


def semver_of_major(major: int) -> str:
    """The semver gitml writes for a version it registers: `vN.0.0`."""
    return f"v{major}.0.0"

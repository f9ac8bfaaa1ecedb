"""The one exception tree of gitml; every error a user can cause is one of these.

    GitMLError                      (INTERNAL_ERROR)
    ├── InvalidParameterValue       (INVALID_PARAMETER_VALUE)
    │   └── InvalidPath             (INVALID_PARAMETER_VALUE)  path traversal, NUL, escaping links
    ├── ResourceDoesNotExist        (RESOURCE_DOES_NOT_EXIST)
    ├── ResourceAlreadyExists       (RESOURCE_ALREADY_EXISTS)
    ├── InvalidState                (INVALID_STATE)
    ├── RepositoryError             (INVALID_STATE)            not a repo, bare, no commits
    ├── CorruptMetadata             (INVALID_STATE)            a file on the branch fails to parse
    ├── ConcurrencyError            (ABORTED)                  compare-and-swap kept losing
    ├── RemoteError                 (TEMPORARILY_UNAVAILABLE)  fetch/push/transfer failures
    └── MissingDependency           (FEATURE_DISABLED)         an optional extra is not installed

Each class owns an MLflow-like error code; the CLI and the HTTP layer map codes
to exit statuses and HTTP statuses (`http_status`).
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "CorruptMetadata",
    "GitMLError",
    "InvalidParameterValue",
    "InvalidPath",
    "InvalidState",
    "MissingDependency",
    "MlflowException",
    "RemoteError",
    "RepositoryError",
    "ResourceAlreadyExists",
    "ResourceDoesNotExist",
    "http_status",
]

_HTTP_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "RESOURCE_ALREADY_EXISTS": 409,
    "INVALID_STATE": 409,
    "ABORTED": 409,
    "FEATURE_DISABLED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}


class GitMLError(Exception):
    """Root of every gitml error; `error_code` is MLflow's name for the failure."""

    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code

    def to_dict(self) -> dict[str, str]:
        """The JSON body the HTTP layer answers with (MLflow's shape)."""
        return {"error_code": self.error_code, "message": self.message}

    def get_http_status_code(self) -> int:
        """MLflow's name for the HTTP status of this error."""
        return http_status(self.error_code)


# MLflow users catch `mlflow.exceptions.MlflowException`; the same class answers here.
MlflowException = GitMLError


class InvalidParameterValue(GitMLError):
    """An argument is malformed or out of range."""

    error_code = "INVALID_PARAMETER_VALUE"


class InvalidPath(InvalidParameterValue):
    """A path that is absolute, holds `..` or NUL, or escapes through a link."""


class ResourceDoesNotExist(GitMLError):
    """An experiment, run, model or version that is not there."""

    error_code = "RESOURCE_DOES_NOT_EXIST"


class ResourceAlreadyExists(GitMLError):
    """A name that is already taken."""

    error_code = "RESOURCE_ALREADY_EXISTS"


class InvalidState(GitMLError):
    """The operation does not fit the current state (a deleted run, a finished run...)."""

    error_code = "INVALID_STATE"


class RepositoryError(InvalidState):
    """The Git repository cannot hold gitml's data as it is (not a repo, bare...)."""


class CorruptMetadata(InvalidState):
    """A file on the metadata branch does not parse or fails its schema."""


class ConcurrencyError(GitMLError):
    """A compare-and-swap ref update kept losing its race."""

    error_code = "ABORTED"


class RemoteError(GitMLError):
    """A Git or DVC remote could not be reached or refused the operation."""

    error_code = "TEMPORARILY_UNAVAILABLE"


class MissingDependency(GitMLError):
    """An optional dependency is not installed; the message names the extra."""

    error_code = "FEATURE_DISABLED"

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module} is not installed: pip install 'gitml[{extra}]' (or install {module})"
        )
        self.module = module
        self.extra = extra


def http_status(error_code: str) -> int:
    """The HTTP status for an MLflow-like error code (500 for unknown codes)."""
    return _HTTP_STATUS.get(error_code, 500)

"""Run ids as people type them: the short form `gitml runs list` prints, resolved like a
short Git hash."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitml.client import MlflowClient

__all__ = ["full_run_id"]

_SHORT = re.compile(r"[0-9a-f]{4,31}")


def full_run_id(client: MlflowClient, run_id: str) -> str:
    """The run id that `run_id` abbreviates (4 to 31 leading hex digits, such as the 12 that
    `gitml runs list` shows); anything else is returned unchanged, to be checked by its user."""
    from gitml.entities import ViewType
    from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist

    if not _SHORT.fullmatch(run_id):
        return run_id
    found = client.search_runs(None, f"attributes.run_id LIKE '{run_id}%'", ViewType.ALL, 2)
    if not found:
        raise ResourceDoesNotExist(f"no run id starts with '{run_id}'")
    if len(found) > 1:
        raise InvalidParameterValue(f"run id prefix '{run_id}' is ambiguous: give more digits")
    return str(found[0].info.run_id)

"""CI tests: no variable of the CI that runs the tests leaks into them."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def no_ci_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset GitHub's and GitLab's job variables (tests set what they need)."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "CI_", "GITLAB_")) or name in (
            "CI",
            "GITML_CI_COMMENT_USER",
        ):
            monkeypatch.delenv(name, raising=False)

"""The registry state from hand-made tags (as `gto` or plain git writes them), checked against
expected values and against the real `gto show --json` on the same repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitml.registry.history import RegistryState, build_state
from gitml.registry.refs import read_tags
from gitml.store.repo import GitRepo
from tests.conftest import git
from tests.registry._util import commit, gto, tag


def _state(repo: Path) -> RegistryState:
    return build_state(read_tags(GitRepo(repo, "gitml")))


def assert_matches_gto(repo: Path) -> RegistryState:
    """gitml's view (active models, latest version, current version per stage) equals GTO's."""
    ours = _state(repo)
    theirs = gto(repo, "show")
    assert set(theirs) == {m.name for m in ours.active_models()}
    for name, view in theirs.items():
        model = ours.models[name]
        latest = model.latest_version()
        assert (latest.semver if latest else None) == view["version"], name
        assert {s: v.semver for s, v in model.current.items()} == {
            s: v for s, v in view["stage"].items() if v
        }, name
    return ours


def test_versions_made_by_gto_map_to_integers_in_semver_order(repo: Path) -> None:
    a = git("rev-parse", "HEAD", cwd=repo).strip()
    b, c = commit(repo, "b"), commit(repo, "c")
    tag(repo, "m@v1.2.3", 300, c)
    tag(repo, "m@v0.0.1", 100, a)
    tag(repo, "m@v0.0.2", 200, b)
    state = assert_matches_gto(repo)
    model = state.models["m"]
    assert [v.semver for v in model.by_number] == ["v0.0.1", "v0.0.2", "v1.2.3"]
    assert [v.number for v in model.by_number] == [1, 2, 3]
    assert model.version(2) is not None and model.version(2).commit == b
    assert model.version(4) is None and model.version(0) is None


def test_current_is_newest_active_assignment_and_unassigning_restores_previous(repo: Path) -> None:
    a = git("rev-parse", "HEAD", cwd=repo).strip()
    b = commit(repo, "b")
    tag(repo, "m@v1.0.0", 100, a)
    tag(repo, "m@v2.0.0", 110, b)
    tag(repo, "m#production#1", 120, a)
    tag(repo, "m#production#2", 130, b)
    tag(repo, "m#staging", 140, a)  # no counter: read all the same
    state = assert_matches_gto(repo)
    m = state.models["m"]
    assert m.current["production"].semver == "v2.0.0"
    assert m.current["staging"].semver == "v1.0.0"
    assert (
        m.versions["v1.0.0"].active_assignment("production") is not None
    )  # still active, not current

    tag(repo, "m#production!#3", 150, b)
    state = assert_matches_gto(repo)
    assert state.models["m"].current["production"].semver == "v1.0.0"

    tag(repo, "m#production!#4", 160, a)
    state = assert_matches_gto(repo)
    assert "production" not in state.models["m"].current


def test_reassigning_an_older_version_makes_it_current(repo: Path) -> None:
    a = git("rev-parse", "HEAD", cwd=repo).strip()
    b = commit(repo, "b")
    tag(repo, "m@v1.0.0", 100, a)
    tag(repo, "m@v2.0.0", 110, b)
    tag(repo, "m#prod#1", 120, a)
    tag(repo, "m#prod#2", 130, b)
    tag(repo, "m#prod#3", 140, a)  # a rollback: a new tag, nothing moved
    state = assert_matches_gto(repo)
    assert state.models["m"].current["prod"].semver == "v1.0.0"


def test_deregistered_versions_keep_their_number_and_lose_their_stages(repo: Path) -> None:
    a = git("rev-parse", "HEAD", cwd=repo).strip()
    b = commit(repo, "b")
    tag(repo, "m@v1.0.0", 100, a)
    tag(repo, "m@v2.0.0", 110, b)
    tag(repo, "m#prod#1", 120, a)
    tag(repo, "m#prod#2", 130, b)
    tag(repo, "m@v2.0.0!#3", 140, b)
    state = assert_matches_gto(repo)
    m = state.models["m"]
    assert m.version(2) is not None and not m.version(2).active
    assert m.latest_version() is not None and m.latest_version().number == 1
    assert m.current["prod"].semver == "v1.0.0"


def test_deprecation_hides_the_model_until_a_newer_event(repo: Path) -> None:
    a = git("rev-parse", "HEAD", cwd=repo).strip()
    tag(repo, "m@v1.0.0", 100, a)
    tag(repo, "other@v1.0.0", 100, a)
    tag(repo, "m@deprecated", 200, a)
    state = assert_matches_gto(repo)
    assert not state.models["m"].active
    assert [m.name for m in state.active_models()] == ["other"]
    b = commit(repo, "b")
    tag(repo, "m@v2.0.0", 300, b)
    state = assert_matches_gto(repo)
    assert state.models["m"].active


def test_bad_tags_are_reported_and_skipped(repo: Path) -> None:
    a = git("rev-parse", "HEAD", cwd=repo).strip()
    tag(repo, "m@v1.0.0", 100, a)
    git("tag", "m@v9.0.0", cwd=repo)  # lightweight: GTO ignores it
    tag(repo, "m@garbage", 110, a)  # not in the grammar
    tag(repo, "v1.0", 120, a)  # an ordinary release tag: not ours, not a problem
    tag(repo, "m#prod#1", 130, commit(repo, "b"))  # a commit with no version
    tree = git("rev-parse", "HEAD^{tree}", cwd=repo).strip()
    git("tag", "-a", "m@v3.0.0", tree, "-m", "a tree", cwd=repo)
    state = _state(repo)
    problems = {p.tag: p.reason for p in state.problems}
    assert set(problems) == {"m@v9.0.0", "m@garbage", "m#prod#1", "m@v3.0.0"}
    assert "lightweight" in problems["m@v9.0.0"]
    assert "grammar" in problems["m@garbage"]
    assert "no registered version" in problems["m#prod#1"]
    assert [v.semver for v in state.models["m"].by_number] == ["v1.0.0"]


@pytest.mark.parametrize("order", [[1, 2], [2, 1]])
def test_same_second_events_order_by_counter(repo: Path, order: list[int]) -> None:
    a = git("rev-parse", "HEAD", cwd=repo).strip()
    b = commit(repo, "b")
    tag(repo, "m@v1.0.0", 100, a)
    tag(repo, "m@v2.0.0", 100, b)
    targets = {1: a, 2: b}
    for n in order:  # creation order must not matter, only the counter
        tag(repo, f"m#prod#{n}", 150, targets[n])
    state = _state(repo)
    assert state.models["m"].current["prod"].semver == "v2.0.0"
    assert state.models["m"].max_counter == 2

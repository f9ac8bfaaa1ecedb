"""Registering at the same time: threads in one clone, and two clones pushing to one bare remote."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gitml.registry.client import RegistryClient
from gitml.registry.history import build_state
from gitml.registry.reconcile import is_registry_tag, push_registry, registry_refspecs
from gitml.registry.refs import read_tags
from gitml.store.repo import GitRepo
from tests.conftest import git
from tests.registry._util import gto, model_runner


def test_threads_registering_at_once_get_distinct_versions(repo: Path, tmp_path: Path) -> None:
    run_id = model_runner(tmp_path)()
    client = RegistryClient()
    client.create_registered_model("iris")
    got: list[int] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            got.append(client.create_model_version("iris", f"runs:/{run_id}/model").version)
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=register) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    assert len({v.git_commit for v in client.search_model_versions("name = 'iris'")}) == 6


def _register_and_promote(clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(clone)
    run_id = model_runner(tmp_path / clone.name)()
    client = RegistryClient(str(clone))
    client.create_registered_model("iris")
    mv = client.create_model_version("iris", f"runs:/{run_id}/model")
    assert mv.version == 1  # each clone alone sees version 1
    client.transition_model_version_stage("iris", 1, "Production")
    return run_id


def test_two_clones_register_at_once_and_both_versions_survive_push(
    clones: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare, a, b = clones
    (tmp_path / "a").mkdir(exist_ok=True)
    run_a = _register_and_promote(a, tmp_path, monkeypatch)
    run_b = _register_and_promote(b, tmp_path, monkeypatch)

    assert push_registry(GitRepo(a, "gitml"), "origin") == []
    renamed = push_registry(GitRepo(b, "gitml"), "origin")
    assert {(r.old, r.new) for r in renamed} == {
        ("iris@v1.0.0", "iris@v2.0.0"),
        ("iris#production#1", "iris#production#2"),
    }
    # The remote holds both clones' tags, none overwritten.
    remote_tags = set(git("tag", cwd=bare).split())
    assert remote_tags == {"iris@v1.0.0", "iris@v2.0.0", "iris#production#1", "iris#production#2"}
    git("fetch", "-q", "origin", "refs/tags/*:refs/tags/*", cwd=a)
    for clone in (a, b):
        state = build_state(read_tags(GitRepo(clone, "gitml")))
        versions = state.models["iris"].by_number
        assert [v.meta["run_id"] for v in versions] == [run_a, run_b]
        assert state.problems == []
    # The renumbered tag still carries B's message, with its new number.
    view = RegistryClient(str(a)).get_model_version("iris", 2)
    assert (view.run_id, view.semver) == (run_b, "v2.0.0")
    assert "renumbered to v2.0.0" in git("tag", "-l", "--format=%(contents)", "iris@v2.0.0", cwd=a)
    assert [v["version"] for v in gto(a, "show", "iris")] == ["v2.0.0", "v1.0.0"]
    # Pushing again has nothing to do.
    assert push_registry(GitRepo(b, "gitml"), "origin") == []


def test_refspecs_and_filter(repo: Path, tmp_path: Path) -> None:
    run_id = model_runner(tmp_path)()
    git("tag", "-a", "release-1", "-m", "not ours", cwd=repo)
    from gitml import register_model

    register_model(f"runs:/{run_id}/model", "iris")
    assert registry_refspecs(GitRepo(repo, "gitml")) == [
        "refs/tags/iris@v1.0.0:refs/tags/iris@v1.0.0"
    ]
    assert (
        is_registry_tag("iris#prod!#3")
        and not is_registry_tag("release-1")
        and not is_registry_tag("a@b")
    )


def test_local_versions_move_above_the_remotes_in_order(
    clones: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare, a, b = clones
    _register_and_promote(a, tmp_path, monkeypatch)
    monkeypatch.chdir(b)
    run_b = model_runner(tmp_path / "b-runs")()
    client = RegistryClient(str(b))
    client.create_registered_model("iris")
    for _ in range(3):
        client.create_model_version("iris", f"runs:/{run_b}/model")
    client.delete_model_version("iris", 2)
    commits = [client._registry().state().models["iris"].version(n).commit for n in (1, 2, 3)]  # type: ignore[union-attr]
    assert push_registry(GitRepo(a, "gitml"), "origin") == []
    renamed = dict((r.old, r.new) for r in push_registry(GitRepo(b, "gitml"), "origin"))
    assert renamed == {
        "iris@v1.0.0": "iris@v4.0.0",  # v2.0.0 and v3.0.0 are B's own names, given up
        "iris@v2.0.0": "iris@v5.0.0",
        "iris@v3.0.0": "iris@v6.0.0",
        "iris@v2.0.0!#1": "iris@v5.0.0!#1",
    }
    state = build_state(read_tags(GitRepo(b, "gitml")))
    model = state.models["iris"]
    # A's version first, then B's three in their order; B's deleted one stays deleted.
    assert [v.semver for v in model.by_number] == ["v1.0.0", "v4.0.0", "v5.0.0", "v6.0.0"]
    assert [v.commit for v in model.by_number[1:]] == commits
    assert [v.active for v in model.by_number] == [True, True, False, True]
    # Every tag B has is on the remote (push does not fetch A's other tags: pull does).
    assert set(git("tag", cwd=b).split()) <= set(git("tag", cwd=bare).split())

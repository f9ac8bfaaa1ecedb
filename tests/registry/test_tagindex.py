"""The on-disk tag index gives exactly what Git gives, fresh after every change."""

from __future__ import annotations

import time
from pathlib import Path

from gitml.registry.refs import read_tags, refs_stamp
from gitml.registry.tagindex import INDEX_FILE, load_tags
from gitml.store.repo import GitRepo
from tests.conftest import git
from tests.registry._util import commit, tag


def _settled(repo: GitRepo) -> tuple[object, ...]:
    time.sleep(0.06)  # past the racy window, so the stamp can be trusted
    stamp = refs_stamp(repo)
    assert stamp is not None
    return stamp


def test_index_matches_git_through_changes(repo: Path) -> None:
    r = GitRepo(repo, "gitml")
    tag(repo, "m@v1.0.0", 100, message="# hi\nrun_id: abc\n")
    git("tag", "light", cwd=repo)
    first = load_tags(r, _settled(r))
    assert sorted(first, key=lambda t: t.name) == sorted(read_tags(r), key=lambda t: t.name)
    assert (r.state_dir / INDEX_FILE).exists()

    # A new tag, a deleted one: read incrementally (objects parsed in Python), same result.
    tag(repo, "m#prod#1", 110, commit(repo, "b"))
    git("tag", "-d", "light", cwd=repo)
    second = load_tags(r, _settled(r))
    expect = sorted(read_tags(r), key=lambda t: t.name)
    got = sorted(second, key=lambda t: t.name)
    assert [t.name for t in got] == ["m#prod#1", "m@v1.0.0"]
    assert [(t.sha, t.target, t.time, t.tagger_email, t.message.strip()) for t in got] == [
        (t.sha, t.target, t.time, t.tagger_email, t.message.strip()) for t in expect
    ]
    # Unchanged refs: served from the file alone.
    assert sorted(load_tags(r, refs_stamp(r)), key=lambda t: t.name) == got


def test_a_broken_index_is_ignored(repo: Path) -> None:
    r = GitRepo(repo, "gitml")
    tag(repo, "m@v1.0.0", 100)
    r.state_dir.mkdir(parents=True, exist_ok=True)
    (r.state_dir / INDEX_FILE).write_text("{not json")
    assert [t.name for t in load_tags(r, _settled(r))] == ["m@v1.0.0"]

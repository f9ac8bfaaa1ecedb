"""The one walker of fanned-out folders (the run folders), and the store merging files without
knowing runs: the run rules come from gitml.tracking.branch_rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitml import constants as C
from gitml.store.fanout import FanOut
from gitml.store.merge import MergeRules, merge_trees
from gitml.store.objects import EMPTY_TREE
from gitml.store.repo import GitRepo
from gitml.tracking.branch_rules import MERGE_RULES
from gitml.tracking.layout import RUN_DIRS

A, B, C_ = "ab" + "1" * 30, "ab" + "2" * 30, "cd" + "3" * 30


@pytest.fixture
def grepo(repo: Path) -> Iterator[GitRepo]:
    r = GitRepo(repo, "gitml")
    yield r
    r.close()


def _meta(run_id: str) -> dict[str, bytes | None]:
    return {f"{C.run_dir(run_id)}/{C.RUN_META}": b"{}\n"}


def test_the_run_codec_is_the_one_the_branch_uses() -> None:
    assert RUN_DIRS.path(A) == C.run_dir(A) == f"runs/ab/{A}"
    assert RUN_DIRS.root == C.RUNS_DIR and RUN_DIRS.width == C.RUN_PREFIX_LEN


def test_names_count_and_moves(grepo: GitRepo) -> None:
    t1 = grepo.apply(EMPTY_TREE, {**_meta(A), **_meta(B)})
    t2 = grepo.apply(t1, {**_meta(C_), f"{C.run_dir(B)}/{C.RUN_PARAMS}": b"{}\n", C.run_dir(A): None})
    assert RUN_DIRS.names(grepo, t1) == [A, B] and RUN_DIRS.count(grepo, t2) == 2
    moves = RUN_DIRS.moves(grepo, t1, t2)
    assert (moves.added, moves.updated, moves.removed) == ((C_,), (B,), (A,))
    assert RUN_DIRS.moves(grepo, t2, t2) == RUN_DIRS.moves(grepo, None, None) == ((), (), ())
    assert RUN_DIRS.names(grepo, None) == [] and RUN_DIRS.names(grepo, EMPTY_TREE) == []


@pytest.mark.parametrize(
    "where", ["runs/ab/..", "runs/ab/x", f"runs/cd/{A}", f"runs/ab/{A.upper()}", "runs/zz/zz"]
)
def test_a_misfiled_or_invalid_name_is_never_a_run(grepo: GitRepo, where: str) -> None:
    tree = grepo.apply(EMPTY_TREE, {**_meta(B), f"{where}/{C.RUN_META}": b"{}\n"})
    assert RUN_DIRS.names(grepo, tree) == [B]
    diff = RUN_DIRS.diff(grepo, None, tree)
    assert [c.name for c in diff.changed] == [B] and diff.misfiled == [where]


def test_any_prefix_width_and_validator(grepo: GitRepo) -> None:
    shape = FanOut("things", 3, str.isalpha)
    tree = grepo.apply(EMPTY_TREE, {"things/abc/abcdef/x": b"1", "things/abc/abc1/x": b"1"})
    assert shape.path("abcdef") == "things/abc/abcdef" and shape.names(grepo, tree) == ["abcdef"]


def test_the_store_alone_knows_no_run_rule(grepo: GitRepo) -> None:
    """params.json is immutable for runs (the remote's value wins): a rule tracking hands in.
    Without it the store merges the map by its default rule (the newer side)."""
    path = f"{C.run_dir(A)}/{C.RUN_PARAMS}"
    b = grepo.apply(EMPTY_TREE, {path: json.dumps({"lr": "0.1"}).encode()})
    o = grepo.apply(b, {path: json.dumps({"lr": "0.2"}).encode()})
    t = grepo.apply(b, {path: json.dumps({"lr": "0.3"}).encode()})

    def lr(rules: MergeRules) -> str:
        tree = merge_trees(grepo, b, o, t, ours_newer=True, rules=rules).tree
        return str(json.loads(grepo.read_file(tree, path) or b"{}")["lr"])

    assert lr(MergeRules()) == "0.2" and lr(MERGE_RULES) == "0.3"

"""Three-way merge of metadata trees: one rule per file kind, nothing lost, no crash."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitml.store.merge import merge_trees as _merge_trees
from gitml.store.objects import EMPTY_TREE
from gitml.store.repo import GitRepo
from gitml.tracking.branch_rules import MERGE_RULES, run_changes

__all__ = ["jdump", "run_files", "write_runs"]


def merge_trees(*args: Any, **kw: Any) -> Any:
    """The store's merge with gitml's branch rules (what pull and push hand it)."""
    return _merge_trees(*args, rules=MERGE_RULES, **kw)


def jdump(obj: Any) -> bytes:
    """The JSON bytes the tracking layer writes."""
    return (json.dumps(obj, sort_keys=True, indent=1) + "\n").encode()


def run_files(
    run_id: str,
    *,
    experiment_id: str = "0",
    status: str = "FINISHED",
    params: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    commit: str | None = None,
    start: int = 1000,
    end: int | None = 2000,
) -> dict[str, bytes | None]:
    """The files of one run in the branch layout (until tests go through the tracking API)."""
    d = f"runs/{run_id[:2]}/{run_id}"
    meta = {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "run_name": f"run-{run_id[:6]}",
        "status": status,
        "start_time": start,
        "end_time": end if status != "RUNNING" else None,
        "lifecycle_stage": "active",
        "user_id": "test",
        "artifact_uri": f"gitml-artifacts:/{run_id}",
        "source": {
            "commit": commit,
            "branch": "main",
            "dirty": False,
            "entry_point": "train.py",
            "repo_url": None,
        },
        "journal": {},
    }
    return {
        f"{d}/meta.json": jdump(meta),
        f"{d}/params.json": jdump(params or {}),
        f"{d}/tags.json": jdump({}),
        f"{d}/metrics.json": jdump(
            {k: {"value": v, "timestamp": start, "step": 0} for k, v in (metrics or {}).items()}
        ),
    }


def write_runs(repo: GitRepo, n: int, **kw: Any) -> list[str]:
    """Commit `n` new runs onto the branch; returns their ids."""
    ids = [uuid.uuid4().hex for _ in range(n)]
    changes: dict[str, bytes | None] = {"gitml.yaml": b"format: 1\n"}
    for run_id in ids:
        changes.update(run_files(run_id, **kw))
    repo.commit(lambda tree: changes, f"log {n} runs")
    return ids


def _tree(repo: GitRepo, base: str, changes: dict[str, bytes | None]) -> str:
    return repo.apply(base, changes)


def _read(repo: GitRepo, tree: str, path: str) -> Any:
    data = repo.read_file(tree, path)
    assert data is not None, path
    return yaml.safe_load(data) if path.endswith(".yaml") else json.loads(data)


@pytest.fixture
def grepo(repo: Path) -> GitRepo:
    r = GitRepo(repo, "gitml")
    yield r
    r.close()


RID = "ab" + "0" * 30


def _three(
    grepo: GitRepo,
    base: dict[str, bytes | None],
    ours: dict[str, bytes | None],
    theirs: dict[str, bytes | None],
) -> tuple[str, str, str]:
    b = _tree(grepo, EMPTY_TREE, base)
    return b, _tree(grepo, b, ours), _tree(grepo, b, theirs)


def test_disjoint_runs_are_unioned(grepo: GitRepo) -> None:
    a, b = "aa" + "1" * 30, "bb" + "2" * 30
    base, ours, theirs = _three(grepo, {"gitml.yaml": b"format: 1\n"}, run_files(a), run_files(b))
    result = merge_trees(grepo, base, ours, theirs)
    assert result.warnings == () and result.resolved == ()
    assert _read(grepo, result.tree, f"runs/aa/{a}/meta.json")["run_id"] == a
    assert _read(grepo, result.tree, f"runs/bb/{b}/meta.json")["run_id"] == b
    changes = run_changes(grepo, ours, result.tree)
    assert changes.added == (b,) and changes.updated == () and changes.removed == ()


def test_params_conflict_keeps_the_remote_value(grepo: GitRepo) -> None:
    p = f"runs/ab/{RID}/params.json"
    base, ours, theirs = _three(
        grepo,
        {p: jdump({"lr": "0.1"})},
        {p: jdump({"lr": "0.1", "bs": "32", "x": "local"})},
        {p: jdump({"lr": "0.1", "ep": "3", "x": "remote"})},
    )
    result = merge_trees(grepo, base, ours, theirs, ours_newer=True)
    assert _read(grepo, result.tree, p) == {"lr": "0.1", "bs": "32", "ep": "3", "x": "remote"}
    assert result.resolved == (f"{p}: x",)


def test_metrics_latest_by_step_then_timestamp(grepo: GitRepo) -> None:
    p = f"runs/ab/{RID}/metrics.json"
    base = {"acc": {"value": 0.1, "timestamp": 1, "step": 0}}
    ours = {
        "acc": {"value": 0.5, "timestamp": 9, "step": 3},
        "loss": {"value": 1.0, "timestamp": 5, "step": 7},
    }
    theirs = {
        "acc": {"value": 0.7, "timestamp": 2, "step": 5},
        "loss": {"value": 2.0, "timestamp": 6, "step": 7},
    }
    b, o, t = _three(grepo, {p: jdump(base)}, {p: jdump(ours)}, {p: jdump(theirs)})
    for ours_newer in (True, False):
        merged = _read(grepo, merge_trees(grepo, b, o, t, ours_newer=ours_newer).tree, p)
        assert merged["acc"]["value"] == 0.7  # higher step wins over a later timestamp
        assert merged["loss"]["value"] == 2.0  # same step: later timestamp


def test_tags_merge_three_way_with_deletions(grepo: GitRepo) -> None:
    p = f"runs/ab/{RID}/tags.json"
    b, o, t = _three(
        grepo,
        {p: jdump({"keep": "1", "gone": "x", "both": "0"})},
        {p: jdump({"keep": "1", "both": "local", "mine": "m"})},  # deleted "gone"
        {p: jdump({"keep": "1", "gone": "x", "both": "remote", "yours": "y"})},
    )
    assert _read(grepo, merge_trees(grepo, b, o, t, ours_newer=True).tree, p) == {
        "keep": "1",
        "both": "local",
        "mine": "m",
        "yours": "y",
    }
    assert _read(grepo, merge_trees(grepo, b, o, t, ours_newer=False).tree, p)["both"] == "remote"


def _meta(status: str, end: int | None, journal: dict[str, int], **extra: Any) -> bytes:
    return jdump(
        {
            "run_id": RID,
            "experiment_id": "0",
            "status": status,
            "lifecycle_stage": "active",
            "start_time": 100,
            "end_time": end,
            "journal": journal,
            **extra,
        }
    )


@pytest.mark.parametrize("ours_newer", [True, False])
def test_run_meta_terminal_status_wins(grepo: GitRepo, ours_newer: bool) -> None:
    p = f"runs/ab/{RID}/meta.json"
    b, o, t = _three(
        grepo,
        {p: _meta("RUNNING", None, {"w1": 3})},
        {p: _meta("RUNNING", None, {"w1": 5, "w2": 1}, lifecycle_stage="deleted")},
        {p: _meta("FINISHED", 900, {"w1": 9})},
    )
    merged = _read(grepo, merge_trees(grepo, b, o, t, ours_newer=ours_newer).tree, p)
    assert merged["status"] == "FINISHED" and merged["end_time"] == 900
    assert merged["journal"] == {"w1": 9, "w2": 1}
    assert merged["lifecycle_stage"] == "deleted"  # from the side that changed it


def test_run_meta_two_terminal_statuses_take_the_later_end(grepo: GitRepo) -> None:
    p = f"runs/ab/{RID}/meta.json"
    b, o, t = _three(
        grepo,
        {p: _meta("RUNNING", None, {})},
        {p: _meta("KILLED", 500, {})},
        {p: _meta("FINISHED", 800, {})},
    )
    merged = _read(grepo, merge_trees(grepo, b, o, t, ours_newer=True).tree, p)
    assert (merged["status"], merged["end_time"]) == ("FINISHED", 800)


def test_same_experiment_created_on_both_sides(grepo: GitRepo) -> None:
    def meta(created: int, updated: int, loc: str) -> bytes:
        return yaml.safe_dump(
            {
                "name": "mnist",
                "experiment_id": "42",
                "artifact_location": loc,
                "lifecycle_stage": "active",
                "creation_time": created,
                "last_update_time": updated,
            }
        ).encode()

    m, tg = "experiments/42/meta.yaml", "experiments/42/tags.json"
    b, o, t = _three(
        grepo,
        {},
        {m: meta(200, 300, "a"), tg: jdump({"team": "x"})},
        {m: meta(100, 250, "b"), tg: jdump({"owner": "y"})},
    )
    result = merge_trees(grepo, b, o, t)
    merged = _read(grepo, result.tree, m)
    assert merged["creation_time"] == 100 and merged["last_update_time"] == 300
    assert merged["name"] == "mnist"
    assert _read(grepo, result.tree, tg) == {"team": "x", "owner": "y"}
    assert result.warnings == ()


def test_history_chunks_union_and_compaction_deletes(grepo: GitRepo) -> None:
    h = f"runs/ab/{RID}/history"
    b, o, t = _three(
        grepo,
        {f"{h}/w1-1.jsonl": b'["loss", 1.0, 1, 0]\n'},
        # ours compacted w1-1 into w1-9 and logged more
        {f"{h}/w1-1.jsonl": None, f"{h}/w1-9.jsonl": b'["loss", 1.0, 1, 0]\n["loss", 0.5, 2, 1]\n'},
        {f"{h}/w2-1.jsonl": b'["acc", 0.3, 1, 0]\n', f"{h}/dup.jsonl": b'["a", 1, 1, 0]\n'},
    )
    o2 = grepo.apply(o, {f"{h}/dup.jsonl": b'["a", 1, 1, 0]\n["b", 2, 2, 0]\n'})
    result = merge_trees(grepo, b, o2, t)
    names = set(grepo.list_dir(result.tree, h))
    assert names == {"w1-9.jsonl", "w2-1.jsonl", "dup.jsonl"}
    assert grepo.read_file(result.tree, f"{h}/dup.jsonl") == b'["a", 1, 1, 0]\n["b", 2, 2, 0]\n'


@pytest.mark.parametrize("side", ["ours", "theirs"])
def test_a_run_deleted_on_one_side_is_kept(grepo: GitRepo, side: str) -> None:
    a, c = "aa" + "1" * 30, "cc" + "3" * 30
    b = grepo.apply(EMPTY_TREE, {**run_files(a), **run_files(c)})
    dropped = grepo.apply(b, {f"runs/aa/{a}": None})
    other = grepo.apply(b, run_files("dd" + "4" * 30))
    o, t = (dropped, other) if side == "ours" else (other, dropped)
    result = merge_trees(grepo, b, o, t)
    assert grepo.lookup(result.tree, f"runs/aa/{a}/meta.json") is not None
    assert run_changes(grepo, b, result.tree).removed == ()


def test_a_remote_rewritten_to_an_unrelated_history_keeps_local_runs(grepo: GitRepo) -> None:
    local = grepo.apply(EMPTY_TREE, {**run_files("aa" + "1" * 30), "gitml.yaml": b"format: 1\n"})
    remote = grepo.apply(EMPTY_TREE, {**run_files("bb" + "2" * 30), "gitml.yaml": b"format: 1\n"})
    result = merge_trees(grepo, None, local, remote)
    assert run_changes(grepo, local, result.tree).added == ("bb" + "2" * 30,)
    assert run_changes(grepo, remote, result.tree).added == ("aa" + "1" * 30,)


@pytest.mark.parametrize("ours_newer", [True, False])
def test_a_hand_edit_that_does_not_parse_never_crashes(grepo: GitRepo, ours_newer: bool) -> None:
    p, m = f"runs/ab/{RID}/params.json", f"runs/ab/{RID}/metrics.json"
    b, o, t = _three(
        grepo,
        {p: jdump({"lr": "0.1"}), m: b"{}\n", "notes.txt": b"a\n"},
        {p: b"{ this is : not json\n", m: b"[broken\n", "notes.txt": b"local\n"},
        {p: jdump({"lr": "0.1", "bs": "8"}), m: b"{oops\n", "notes.txt": b"remote\n"},
    )
    result = merge_trees(grepo, b, o, t, ours_newer=ours_newer)
    assert _read(grepo, result.tree, p) == {"lr": "0.1", "bs": "8"}
    expected_m = b"[broken\n" if ours_newer else b"{oops\n"
    assert grepo.read_file(result.tree, m) == expected_m
    assert grepo.read_file(result.tree, "notes.txt") == (b"local\n" if ours_newer else b"remote\n")
    joined = "\n".join(result.warnings)
    assert p in joined and m in joined and "notes.txt" in joined


def test_a_parseable_hand_edit_conflict_is_resolved_and_reported(grepo: GitRepo) -> None:
    p = f"runs/ab/{RID}/params.json"
    b, o, t = _three(
        grepo, {p: jdump({"lr": "0.1"})}, {p: jdump({"lr": "0.2"})}, {p: jdump({"lr": "0.3"})}
    )
    result = merge_trees(grepo, b, o, t, ours_newer=True)
    assert _read(grepo, result.tree, p) == {"lr": "0.3"}
    assert result.resolved == (f"{p}: lr",)


def test_merge_reads_only_subtrees_changed_on_both_sides(grepo: GitRepo) -> None:
    write_runs(grepo, 2000)
    base = grepo.tree_of(grepo.tip())
    o = grepo.apply(base, run_files("aa" + "1" * 30))
    t = grepo.apply(base, run_files("aa" + "2" * 30))
    reads: list[str] = []
    original = grepo.objects.read_tree

    def counting(sha: str) -> Any:
        reads.append(sha)
        return original(sha)

    grepo.objects.read_tree = counting  # type: ignore[method-assign]
    result = merge_trees(grepo, base, o, t)
    grepo.objects.read_tree = original  # type: ignore[method-assign]
    assert run_changes(grepo, base, result.tree).added == ("aa" + "1" * 30, "aa" + "2" * 30)
    # root, runs/ and runs/aa on three sides, and the merged root once more for the
    # tombstones (purged.json): nothing else of the 2,000 runs
    assert len(reads) <= 10


def test_a_broken_json_edit_that_reads_as_yaml_is_salvaged(grepo: GitRepo) -> None:
    p, t = f"runs/ab/{RID}/params.json", f"runs/ab/{RID}/tags.json"
    b, o, th = _three(
        grepo,
        {p: jdump({"lr": "0.1"}), t: jdump({})},
        {p: b'{"lr": "0.1", opt: adam, "n": 3,}\n', t: b"{team: vision}\n"},
        {p: jdump({"lr": "0.1", "bs": "8"}), t: jdump({"x": "1"})},
    )
    result = merge_trees(grepo, b, o, th)
    assert _read(grepo, result.tree, p) == {"lr": "0.1", "opt": "adam", "n": "3", "bs": "8"}
    assert _read(grepo, result.tree, t) == {"team": "vision", "x": "1"}
    assert sum("merged what YAML reads" in w for w in result.warnings) == 2

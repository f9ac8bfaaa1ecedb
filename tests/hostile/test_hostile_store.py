"""Attacks through the metadata branch: odd tree modes and names, non-commit tips, purges."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gitml.exceptions import GitMLError
from tests.conftest import git

from .conftest import World, git_input, in_clone


def _raw_tree(clone: Path, entries: list[tuple[str, str, str]]) -> str:
    """A tree object from (mode, name, sha) exactly as given (no sorting, no checks)."""
    body = b"".join(m.encode() + b" " + n.encode() + b"\0" + bytes.fromhex(s) for m, n, s in entries)
    return git_input(body, "hash-object", "-t", "tree", "-w", "--literally", "--stdin", cwd=clone).strip()


def _root_entries(clone: Path, ref: str = "refs/heads/gitml") -> list[tuple[str, str, str]]:
    out = []
    for line in git("ls-tree", ref, cwd=clone).splitlines():
        meta, name = line.split("\t", 1)
        mode, _, sha = meta.split(" ")
        out.append((mode, name, sha))
    return out


def _commit_tree(clone: Path, tree: str, message: str = "tidy") -> str:
    tip = git("rev-parse", "refs/heads/gitml", cwd=clone).strip()
    commit = git("commit-tree", tree, "-p", tip, "-m", message, cwd=clone).strip()
    git("update-ref", "refs/heads/gitml", commit, cwd=clone)
    return commit


def _force_push(clone: Path) -> None:
    git("push", "-q", "--force", "origin", "refs/heads/gitml:refs/heads/gitml", cwd=clone)


def _three_runs(world: World) -> list[str]:
    ids = [world.log_run(world.attacker, acc=0.1 * i) for i in range(3)]
    world.push(world.attacker)
    return ids


def test_a_zero_padded_folder_mode_is_a_folder_and_no_run_is_dropped(world: World) -> None:
    ids = _three_runs(world)
    a = world.attacker
    entries = [(("040000" if m == "040000" or m == "40000" else m), n, s) for m, n, s in _root_entries(a)]
    _commit_tree(a, _raw_tree(a, entries))
    _force_push(a)
    assert world.runs_on(world.bare) == set(ids)  # git reads 040000 as a folder
    world.pull(world.victim)
    mine = world.log_run(world.victim, acc=0.9)
    world.push(world.victim)
    assert world.runs_on(world.bare) == {*ids, mine}
    assert world.runs_on(world.victim) == {*ids, mine}


@pytest.mark.parametrize("name", ["a/b", "dup", "mode"], ids=["slash", "duplicate", "bad-mode"])
def test_ambiguous_tree_entries_are_refused_and_nothing_is_lost(world: World, name: str) -> None:
    ids = _three_runs(world)
    mine = world.log_run(world.victim, acc=0.5)  # the victim has work of its own
    a = world.attacker
    entries = _root_entries(a)
    blob = git_input(b"x", "hash-object", "-w", "--stdin", cwd=a).strip()
    if name == "dup":
        entries = entries + [entries[-1]]
    elif name == "mode":
        entries = [*entries, ("170644", "zz", blob)]
    else:
        entries = [*entries, ("100644", name, blob)]
    _commit_tree(a, _raw_tree(a, entries))
    _force_push(a)
    before = git("rev-parse", "refs/heads/gitml", cwd=world.victim).strip()
    with pytest.raises(GitMLError, match="Git tree"):
        world.pull(world.victim)
    # the victim's branch is as it was, its runs readable
    assert git("rev-parse", "refs/heads/gitml", cwd=world.victim).strip() == before
    assert mine in world.runs_on(world.victim)
    with in_clone(world.victim):
        import gitml

        assert mine in {r.info.run_id for r in gitml.search_runs(output_format="list")}
    # the victim's push is refused too (it cannot merge what it cannot read): nothing dropped
    with pytest.raises(GitMLError):
        world.push(world.victim)
    assert set(ids) <= {p.split("/")[2] for p in git("ls-tree", "-r", "--name-only", "refs/heads/gitml", cwd=world.bare).splitlines() if p.startswith("runs/")}


@pytest.mark.parametrize("kind", ["blob", "tree"])
def test_a_branch_tip_that_is_not_a_commit_is_refused(world: World, kind: str) -> None:
    """Attack of our own: the remote's metadata branch points at a blob or a tree."""
    _three_runs(world)
    mine = world.log_run(world.victim, acc=0.5)
    a = world.attacker
    target = (
        git_input(b"not a commit", "hash-object", "-w", "--stdin", cwd=a).strip()
        if kind == "blob"
        else git("rev-parse", "refs/heads/gitml^{tree}", cwd=a).strip()
    )
    # Git refuses a non-commit branch tip, so the attacker (with shell access to the
    # remote, or a server that does not check) writes the ref file itself.
    if kind == "blob":
        git_input(b"not a commit", "hash-object", "-w", "--stdin", cwd=world.bare)
    else:
        git("fetch", "-q", str(a), "refs/heads/gitml:refs/heads/tmp", cwd=world.bare)
    (world.bare / "refs" / "heads").mkdir(parents=True, exist_ok=True)
    (world.bare / "refs" / "heads" / "gitml").write_text(target + "\n")
    packed = world.bare / "packed-refs"
    if packed.exists():
        packed.write_text("".join(x for x in packed.read_text().splitlines(True) if "refs/heads/gitml" not in x))
    t0 = time.monotonic()
    with pytest.raises(GitMLError):
        world.pull(world.victim)
    assert time.monotonic() - t0 < 30
    assert mine in world.runs_on(world.victim)


@pytest.mark.parametrize("name", ["..", ".git", ".GIT"])
def test_names_only_a_checkout_fears_are_kept_and_nothing_is_dropped(world: World, name: str) -> None:
    """`..` and `.git` are keys on the branch, never paths: a pull keeps them, a write
    copies them, and no run is dropped."""
    ids = _three_runs(world)
    a = world.attacker
    blob = git_input(b"x", "hash-object", "-w", "--stdin", cwd=a).strip()
    _commit_tree(a, _raw_tree(a, sorted([*_root_entries(a), ("100644", name, blob)], key=lambda e: e[1])))
    _force_push(a)
    world.pull(world.victim)
    mine = world.log_run(world.victim, acc=0.9)
    world.push(world.victim)
    assert world.runs_on(world.bare) == {*ids, mine}
    assert name in git("ls-tree", "--name-only", "refs/heads/gitml", cwd=world.bare).split("\n")


def _bomb(levels: int = 9) -> bytes:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("path", ["experiments/0/tags.json", "experiments/0/meta.yaml"])
def test_a_yaml_alias_bomb_in_a_merge_is_not_expanded(world: World, path: str) -> None:
    import gitml
    from tests.hostile._readers import plant

    _three_runs(world)
    world.pull(world.victim)
    a = world.attacker
    with in_clone(a):
        gitml.set_experiment_tag("owner", "mallory")
    plant(a, {path: _bomb()})
    _force_push(a)
    with in_clone(world.victim):
        gitml.set_experiment_tag("owner", "victim")
    if path.endswith(".yaml"):  # the victim's side changes the file too (a rename, say)
        meta = git("show", f"refs/heads/gitml:{path}", cwd=world.victim)
        plant(world.victim, {path: (meta + "last_update_time: 1\n").encode()})
    mine = world.log_run(world.victim, acc=0.9)
    t0 = time.monotonic()
    shared = world.pull(world.victim)  # neither a stall, nor a MemoryError, nor a refusal
    assert time.monotonic() - t0 < 30
    warnings = shared.result.warnings  # type: ignore[attr-defined]
    assert any(path in w for w in warnings), warnings
    if shared is not None:
        world.push(world.victim)
        assert mine in world.runs_on(world.bare)
        blob = git("show", f"refs/heads/gitml:{path}", cwd=world.victim)
        assert len(blob) < 100_000  # kept one side whole, never the expansion
    # pull, push and sync keep working afterwards
    t0 = time.monotonic()
    try:
        world.pull(world.victim)
    except GitMLError:
        pass
    assert time.monotonic() - t0 < 30


def _purge_all(world: World, ids: list[str]) -> None:
    """The attacker tombstones every run and removes them from the branch."""
    import json

    from tests.hostile._readers import plant

    a = world.attacker
    plant(a, {"purged.json": json.dumps({"runs": {r: 1 for r in ids}, "experiments": {}}).encode()})
    tree = git("rev-parse", "refs/heads/gitml^{tree}", cwd=a).strip()
    entries = [e for e in _root_entries(a) if e[1] != "runs"]
    tree = _raw_tree(a, sorted(entries, key=lambda e: e[1]))
    _commit_tree(a, tree, "cleanup")
    _force_push(a)


def test_a_purge_of_every_run_needs_allow_purge(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import run_cli

    ids = _three_runs(world)
    world.pull(world.victim)
    _purge_all(world, ids)
    with pytest.raises(GitMLError, match="would remove 3 of the 3 runs.*--allow-purge"):
        world.pull(world.victim)
    assert world.runs_on(world.victim) == set(ids)  # nothing removed
    with in_clone(world.victim):
        code, out, err = run_cli(capsys, "pull")
        assert code != 0 and "--allow-purge" in err and "already up to date" not in out
        with pytest.raises(GitMLError):  # a push must not spread it either
            world.push(world.victim)
        code, out, err = run_cli(capsys, "pull", "--allow-purge")
    assert code == 0, err
    assert "3 removed" in out and "already up to date" not in out
    assert "removed 3 of 3 run(s)" in err
    assert world.runs_on(world.victim) == set()


def test_one_purged_run_is_removed_and_reported(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import run_cli

    ids = _three_runs(world)
    world.pull(world.victim)
    with in_clone(world.attacker):
        from gitml.tracking.client import MlflowClient

        MlflowClient().delete_run(ids[0], permanent=True)
    world.push(world.attacker)
    with in_clone(world.victim):
        code, out, err = run_cli(capsys, "pull")
    assert code == 0, err
    assert "1 removed" in out and "already up to date" not in out


@pytest.mark.parametrize("where", ["cli", "env", "config"])
@pytest.mark.parametrize("command", ["pull", "push", "sync"])
def test_a_remote_named_like_an_option_never_runs_a_command(
    world: World, where: str, command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run_cli

    proof = world.home / "pwned"
    evil = f"--upload-pack=touch {proof}"
    args = [command]
    if where == "cli":
        args += ["--", evil]
    elif where == "env":
        monkeypatch.setenv("GITML_REMOTE", evil)
    else:
        git("config", "gitml.remote", evil, cwd=world.victim)
    world.log_run(world.victim, acc=0.1)
    with in_clone(world.victim):
        code, out, err = run_cli(capsys, *args)
    assert code != 0 and "Error:" in err and "git option" in err, err
    assert not proof.exists()


@pytest.mark.parametrize("remote", ["ext::sh -c touch% pwned", "a..b", "bad name", "x.lock"])
def test_remotes_git_refuses_are_refused_before_git_runs(world: World, remote: str) -> None:
    with pytest.raises(GitMLError):
        world.pull(world.victim, remote=remote)
    assert not (world.victim / "pwned").exists()


def test_two_syncs_at_once_on_one_clone_both_succeed(world: World) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    for i in range(3):
        world.log_run(world.attacker, acc=0.1 * i)
    world.push(world.attacker)
    world.log_run(world.victim, acc=0.5)
    env = {**os.environ, "PYTHONPATH": str(root)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", "from gitml.cli import main; main()", "sync"],
            cwd=world.victim, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert "cannot lock ref" not in err, err
        assert p.returncode == 0, err
    assert len(world.runs_on(world.bare)) == 4

"""Attacks through the artifact remote: crafted `.dir` manifests, tampered bytes, links."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import gitml
from gitml.artifacts.runs import pull_artifacts, push_artifacts, read_pointers
from gitml.exceptions import GitMLError
from gitml.tracking.tracker import get_tracker

from .conftest import World, in_clone

SECRET = b"the victim's private key\n"


def _obj(remote: Path, oid: str) -> Path:
    return remote / "files" / "md5" / oid[:2] / oid[2:]


def _plant_manifest(world: World, entries: list[dict[str, str]]) -> tuple[str, str]:
    """The attacker logs a folder run, pushes it, then swaps the folder's manifest on the
    artifact remote and re-points the run at it (a new commit on the shared branch)."""
    rid = world.log_run(world.attacker, {"a.txt": b"A"})
    world.push(world.attacker)
    data = json.dumps(entries, sort_keys=True).encode()
    oid = hashlib.md5(data).hexdigest() + ".dir"
    target = _obj(world.artifacts, oid)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    with in_clone(world.attacker):
        tracker = get_tracker()
        pointers = read_pointers(tracker, rid)
        pointers["data"]["md5"] = oid
        _rewrite_pointers(world.attacker, rid, pointers)
    world.push(world.attacker)
    return rid, oid


def _rewrite_pointers(clone: Path, rid: str, pointers: dict[str, object]) -> None:
    """Commit a new artifacts.json for run `rid` onto the metadata branch with git plumbing."""
    from tests.conftest import git

    from .conftest import git_input

    path = f"runs/{rid[:2]}/{rid}/artifacts.json"
    blob = git_input(json.dumps(pointers, sort_keys=True).encode(), "hash-object", "-w", "--stdin", cwd=clone).strip()
    env_index = clone / ".git" / "attack-index"
    import os
    import subprocess

    env = dict(os.environ, GIT_INDEX_FILE=str(env_index))
    subprocess.run(["git", "read-tree", "refs/heads/gitml"], cwd=clone, env=env, check=True)
    subprocess.run(
        ["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"], cwd=clone, env=env, check=True
    )
    tree = subprocess.run(["git", "write-tree"], cwd=clone, env=env, check=True, capture_output=True, text=True)
    tip = git("rev-parse", "refs/heads/gitml", cwd=clone).strip()
    commit = git("commit-tree", tree.stdout.strip(), "-p", tip, "-m", "innocent", cwd=clone).strip()
    git("update-ref", "refs/heads/gitml", commit, tip, cwd=clone)
    env_index.unlink(missing_ok=True)


def _victim_secret(world: World) -> Path:
    secret = world.home / "id_rsa"
    secret.write_bytes(SECRET)
    return secret


@pytest.mark.parametrize("how", ["relative", "absolute", "dotdir"])
def test_crafted_manifest_md5_never_reaches_outside_the_cache(world: World, tmp_path: Path, how: str) -> None:
    secret = _victim_secret(world)
    import os

    cache_xx = world.victim / ".git" / "gitml" / "artifacts" / "cache" / "files" / "md5" / "ab"
    if how == "relative":
        md5 = "ab" + os.path.relpath(secret, cache_xx)
    elif how == "absolute":
        md5 = str(secret)
    else:
        md5 = "ab" + os.path.relpath(secret, cache_xx) + ".dir"
    rid, bad_dir = _plant_manifest(world, [{"md5": md5, "relpath": "stolen.txt"}])
    shared = world.pull(world.victim)
    assert secret.read_bytes() == SECRET  # not deleted by the pull
    assert bad_dir in shared.artifacts_pulled.corrupt  # type: ignore[attr-defined]
    dl = tmp_path / "dl"
    with in_clone(world.victim):
        tracker = get_tracker()
        with pytest.raises(GitMLError, match="not a content id"):
            gitml.artifacts.download_artifacts(f"runs:/{rid}/data", dst_path=str(dl))
        assert not any(p.is_file() and p.read_bytes() == SECRET for p in dl.rglob("*"))
        assert bad_dir in push_artifacts(tracker).corrupt
        assert bad_dir in pull_artifacts(tracker).corrupt
    assert secret.read_bytes() == SECRET
    # the rest stays readable: the attacker's other runs, and the victim's own
    mine = world.log_run(world.victim, {"b.txt": b"B"})
    with in_clone(world.victim):
        out = gitml.artifacts.download_artifacts(f"runs:/{mine}/data", dst_path=str(tmp_path / "mine"))
    assert (Path(out) / "b.txt").read_bytes() == b"B"


def test_manifest_with_a_file_and_a_folder_at_one_path_writes_nothing(world: World, tmp_path: Path) -> None:
    a = hashlib.md5(b"A").hexdigest()
    _obj(world.artifacts, a).parent.mkdir(parents=True, exist_ok=True)
    rid, bad_dir = _plant_manifest(world, [{"md5": a, "relpath": "x"}, {"md5": a, "relpath": "x/y"}])
    world.pull(world.victim)
    dl = tmp_path / "dl"
    with in_clone(world.victim), pytest.raises(GitMLError, match="lists both 'x' and 'x/y'"):
        gitml.artifacts.download_artifacts(f"runs:/{rid}/data", dst_path=str(dl))
    assert not dl.exists() or not any(dl.rglob("*"))  # no partial download


def test_tampered_bytes_are_corrupt_not_missing_and_stay_on_the_remote(world: World, tmp_path: Path) -> None:
    rid = world.log_run(world.attacker, {"a.txt": b"honest bytes"})
    world.push(world.attacker)
    good = hashlib.md5(b"honest bytes").hexdigest()
    obj = _obj(world.artifacts, good)
    obj.chmod(0o644)
    obj.write_bytes(b"evil bytes")  # the attacker rewrites the object in place
    shared = world.pull(world.victim)
    pulled = shared.artifacts_pulled  # type: ignore[attr-defined]
    assert good in pulled.corrupt and good in pulled.failed
    assert obj.read_bytes() == b"evil bytes"  # the pull never deletes from the shared remote
    with in_clone(world.victim), pytest.raises(GitMLError, match=f"{good}.*does not match its md5"):
        gitml.artifacts.download_artifacts(f"runs:/{rid}/data/a.txt", dst_path=str(tmp_path / "dl"))
    assert not (tmp_path / "dl" / "a.txt").exists()


def test_pointer_with_a_crafted_md5_is_refused_where_it_becomes_a_path(world: World, tmp_path: Path) -> None:
    """Attack of our own: the run's pointer itself (not a manifest) names a path."""
    secret = world.home / "id_rsa"
    secret.write_bytes(SECRET)
    rid = world.log_run(world.attacker, {"a.txt": b"A"})
    with in_clone(world.attacker):
        pointers = read_pointers(get_tracker(), rid)
    pointers["data"]["md5"] = str(secret)
    _rewrite_pointers(world.attacker, rid, pointers)
    with in_clone(world.attacker):
        assert rid in push_artifacts(get_tracker()).skipped_runs
    world.push(world.attacker)
    shared = world.pull(world.victim)
    assert rid in shared.artifacts_pulled.skipped_runs  # type: ignore[attr-defined]
    with in_clone(world.victim), pytest.raises(GitMLError):
        gitml.artifacts.download_artifacts(f"runs:/{rid}/data", dst_path=str(tmp_path / "dl"))
    assert secret.read_bytes() == SECRET
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").rglob("*"))


def test_model_loading_through_a_crafted_manifest_reads_nothing_outside(world: World, tmp_path: Path) -> None:
    """`runs:/` and `models:/` loads go through the same download: refused, nothing read."""
    import os
    import subprocess

    secret = _victim_secret(world)
    cache_xx = world.victim / ".git" / "gitml" / "artifacts" / "cache" / "files" / "md5" / "ab"
    md5 = "ab" + os.path.relpath(secret, cache_xx)
    rid, _ = _plant_manifest(world, [{"md5": md5, "relpath": "MLmodel"}])
    msg = world.attacker / ".git" / "MSG"
    msg.write_text(f"run_id: {rid}\nartifact_path: data\nsource: runs:/{rid}/data\n")
    subprocess.run(["git", "tag", "-a", "m@v1.0.0", "-F", str(msg)], cwd=world.attacker, check=True)
    subprocess.run(["git", "push", "-q", "origin", "refs/tags/m@v1.0.0"], cwd=world.attacker, check=True)
    world.pull(world.victim)
    with in_clone(world.victim):
        for uri in (f"runs:/{rid}/data", "models:/m/1"):
            with pytest.raises(GitMLError):
                gitml.pyfunc.load_model(uri)
    assert secret.read_bytes() == SECRET

"""get_artifact_uri()'s folder is filled from manifests read off the artifact remote: a crafted one
must not write or read outside the run's staging folder."""

from __future__ import annotations

import hashlib
import os

import pytest

import gitml
from gitml.exceptions import GitMLError

from .conftest import World, in_clone
from .test_hostile_artifacts import SECRET, _obj, _plant_manifest, _victim_secret


@pytest.mark.parametrize("relpath", ["../../../../escape.txt", "/tmp/escape.txt", "a/../../escape.txt"])
def test_a_manifest_path_cannot_leave_the_folder(world: World, relpath: str) -> None:
    a = hashlib.md5(b"A").hexdigest()
    _obj(world.artifacts, a).parent.mkdir(parents=True, exist_ok=True)
    _obj(world.artifacts, a).write_bytes(b"A")
    rid, _ = _plant_manifest(world, [{"md5": a, "relpath": relpath}])
    world.pull(world.victim)
    before = {p for p in world.victim.parent.rglob("escape.txt")}
    with in_clone(world.victim):
        with gitml.start_run(run_id=rid):  # the victim resumes the run, as MLFLOW_RUN_ID does
            with pytest.raises(GitMLError):
                gitml.get_artifact_uri("data")
    assert {p for p in world.victim.parent.rglob("escape.txt")} == before == set()


def test_a_manifest_md5_cannot_copy_a_file_from_outside_the_cache(world: World) -> None:
    secret = _victim_secret(world)
    cache_xx = world.victim / ".git" / "gitml" / "artifacts" / "cache" / "files" / "md5" / "ab"
    md5 = "ab" + os.path.relpath(secret, cache_xx)
    rid, _ = _plant_manifest(world, [{"md5": md5, "relpath": "stolen.txt"}])
    world.pull(world.victim)
    with in_clone(world.victim):
        with gitml.start_run(run_id=rid):
            for path in ("data", "data/stolen.txt", None):
                with pytest.raises(GitMLError, match="not a content id"):
                    gitml.get_artifact_uri(path)
    folder = world.victim / ".git" / "gitml" / "staging"
    assert not any(p.is_file() and p.read_bytes() == SECRET for p in folder.rglob("*"))
    assert secret.read_bytes() == SECRET

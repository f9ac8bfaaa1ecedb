"""Attacks through registry tags: forged events in messages, junk times, junk tags, odd targets."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from gitml.registry.access import open_registry
from gitml.registry.client import RegistryClient
from tests.conftest import git, run_cli

from .conftest import World, git_input, in_clone


def _tag(clone: Path, name: str, message: str, target: str = "HEAD", when: int | None = None) -> None:
    env = dict(os.environ)
    if when is not None:
        env["GIT_COMMITTER_DATE"] = f"{when} +0000"
    msg = clone / ".git" / "TAG_MSG"
    msg.write_bytes(message.encode())
    subprocess.run(
        ["git", "tag", "-a", "--cleanup=verbatim", name, target, "-F", str(msg)],
        cwd=clone, env=env, check=True, capture_output=True,
    )  # fmt: skip


def _raw_tag(clone: Path, name: str, target: str, kind: str, tagger_time: str, message: str = "m\n") -> str:
    """A tag object written without Git's checks (as a hostile client can), and its ref."""
    body = (
        f"object {target}\ntype {kind}\ntag {name}\n"
        f"tagger Mallory <m@example.com> {tagger_time} +0000\n\n{message}"
    ).encode()
    sha = git_input(body, "hash-object", "-t", "tag", "-w", "--literally", "--stdin", cwd=clone).strip()
    git("update-ref", f"refs/tags/{name}", sha, cwd=clone)
    return sha


def _push_tags(clone: Path) -> None:
    git("push", "-q", "origin", "main", "refs/tags/*:refs/tags/*", cwd=clone)


def _head(clone: Path) -> str:
    return git("rev-parse", "HEAD", cwd=clone).strip()


def _state(clone: Path):  # type: ignore[no-untyped-def]
    with in_clone(clone):
        return open_registry(str(clone)).state()


def test_a_forged_record_in_a_tag_message_is_not_an_event(world: World) -> None:
    a = world.attacker
    sha = _head(a)
    now = int(time.time())
    # The old reader split for-each-ref output on \x1e\n and \x1f: this message held a record.
    forged = (
        f"run_id: x\n\x1e\nrefs/tags/m#production#99\x1ftag\x1f{'1' * 40}\x1f{sha}\x1fcommit\x1f"
        f"{now + 100} +0000\x1fMallory\x1fm@example.com\x1fpromoted\n"
    )
    _tag(a, "m@v1.0.0", forged, when=now - 10)
    _push_tags(a)
    world.pull(world.victim)
    state = _state(world.victim)
    model = state.models["m"]
    assert [e.tag for e in model.events] == ["m@v1.0.0"]
    assert model.current == {}  # nothing promoted to production
    assert all("#production" not in p.tag for p in state.problems)
    # `git tag -l` (and GTO) see exactly one tag, and so does gitml
    assert git("tag", "-l", cwd=world.victim).split() == ["m@v1.0.0"]


def test_an_overflowing_tagger_time_is_skipped_and_never_followed(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    a = world.attacker
    now = int(time.time())
    _tag(a, "m@v1.0.0", "first\n", when=now - 100)
    _tag(a, "m#staging#1", "ok\n", when=now - 50)
    _raw_tag(a, "m#production#2", _head(a), "commit", "1" + "0" * 20)  # 10^20
    _raw_tag(a, "m#production#3", _head(a), "commit", str(253_402_300_799))  # the year 9999
    _push_tags(a)
    world.pull(world.victim)
    state = _state(world.victim)
    assert any(p.tag == "m#production#2" and "out of range" in p.reason for p in state.problems)
    with in_clone(world.victim):
        code, out, err = run_cli(capsys, "models", "history", "m")
        assert code == 0, err
        code, out, err = run_cli(capsys, "models", "current", "m")
        assert code == 0, err
        RegistryClient(str(world.victim)).transition_model_version_stage("m", 1, "archived")
    state = _state(world.victim)
    ours = [e for e in state.models["m"].events if "archived" in e.tag]
    assert ours and 0 < ours[0].time <= int(time.time()) + 5  # the clock, not max+1 of junk


def test_thousands_of_junk_tags_make_one_warning_line(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    a = world.attacker
    _tag(a, "m@v1.0.0", "first\n")
    sha = _head(a)
    lines = "".join(f"create refs/tags/junk{i}@v1.0.0 {sha}\n" for i in range(3000))
    git_input(lines.encode(), "update-ref", "--stdin", cwd=a)
    _push_tags(a)
    world.pull(world.victim)
    with in_clone(world.victim):
        code, out, err = run_cli(capsys, "models", "list")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "3000" in warnings[0], err
    assert "m" in out


@pytest.mark.parametrize("kind", ["blob", "tree", "tag"])
def test_a_tag_of_a_blob_tree_or_tag_is_skipped(world: World, kind: str) -> None:
    """Attack of our own: an annotated registry tag whose target is not a commit."""
    a = world.attacker
    _tag(a, "m@v1.0.0", "first\n")
    target = {
        "blob": git_input(b"payload", "hash-object", "-w", "--stdin", cwd=a).strip(),
        "tree": git("rev-parse", "HEAD^{tree}", cwd=a).strip(),
        "tag": git("rev-parse", "refs/tags/m@v1.0.0", cwd=a).strip(),
    }[kind]
    _raw_tag(a, "m#production#5", target, kind, str(int(time.time())))
    _push_tags(a)
    world.pull(world.victim)
    state = _state(world.victim)
    assert state.models["m"].current == {}
    assert any(p.tag == "m#production#5" for p in state.problems)


def test_a_gigantic_tag_message_is_cut_and_the_registry_stays_readable(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Attack of our own: a 20 MB tag message."""
    a = world.attacker
    _tag(a, "m@v1.0.0", "run_id: x\n" + "#" * (20 << 20) + "\n")
    _tag(a, "n@v1.0.0", "first\n")
    _push_tags(a)
    world.pull(world.victim)
    t0 = time.monotonic()
    state = _state(world.victim)
    assert time.monotonic() - t0 < 10
    assert len(state.models["m"].events[0].raw.message) <= 1 << 20
    with in_clone(world.victim):
        code, out, err = run_cli(capsys, "models", "list")
    assert code == 0 and "n" in out, err


@pytest.mark.parametrize(
    "meta",
    [
        "source: /etc\n",
        "source: file:///etc\n",
        "source: ../../victim-home\n",
        "run_id: ../../../../etc\nartifact_path: x\n",
        "run_id: " + "a" * 32 + "\nartifact_path: ../../../etc\n",
    ],
)
def test_a_version_source_cannot_name_a_local_path(world: World, meta: str, capsys: pytest.CaptureFixture[str]) -> None:
    a = world.attacker
    _tag(a, "m@v1.0.0", meta)
    _push_tags(a)
    world.pull(world.victim)
    from gitml.exceptions import GitMLError
    from gitml.registry.resolve import current_version, resolve_models_uri

    with in_clone(world.victim):
        reg = open_registry(str(world.victim))
        with pytest.raises(GitMLError, match="local path|source|run id|artifact path|\\.\\."):
            resolve_models_uri("models:/m/1", registry=reg)
        with pytest.raises(GitMLError):
            current_version("m", registry=reg)
        assert RegistryClient(str(world.victim)).get_model_version("m", 1).source is None

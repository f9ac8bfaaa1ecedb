"""Push, pull and sync against real bare remotes over file, local-path and SSH transports."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitml.exceptions import InvalidState, RemoteError
from gitml.registry.tags import is_registry_tag
from gitml.store import sync as _sync
from gitml.store.repo import GitRepo
from gitml.tracking.branch_rules import BRANCH_RULES, run_changes
from tests.conftest import git, make_repo
from tests.store.test_merge import jdump, run_files, write_runs


# The store moves the tags its caller names; gitml's callers name the registry's (GTO's grammar).
def pull(repo: GitRepo, *args: object, **kw: object) -> _sync.SyncResult:
    return _sync.pull(repo, *args, **{"rules": BRANCH_RULES, "tag_filter": is_registry_tag, **kw})  # type: ignore[arg-type]


def push(repo: GitRepo, *args: object, **kw: object) -> _sync.SyncResult:
    return _sync.push(repo, *args, **{"rules": BRANCH_RULES, "tag_filter": is_registry_tag, **kw})  # type: ignore[arg-type]


def sync(repo: GitRepo, *args: object, **kw: object) -> _sync.SyncResult:
    return _sync.sync(repo, *args, **{"rules": BRANCH_RULES, "tag_filter": is_registry_tag, **kw})  # type: ignore[arg-type]

ROOT = Path(__file__).resolve().parents[2]


def runs_on(repo_dir: Path, ref: str = "gitml") -> set[str]:
    """Run ids on a branch, read with plain git."""
    out = git("ls-tree", "-r", "--name-only", ref, "--", "runs", cwd=repo_dir)
    return {p.split("/")[2] for p in out.splitlines() if p.endswith("/meta.json")}


def show_json(repo_dir: Path, ref: str, path: str) -> dict:
    return json.loads(git("show", f"{ref}:{path}", cwd=repo_dir))


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote holding the code's main branch (as a hosting service would)."""
    seed = make_repo(tmp_path / "seed")
    bare = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("push", "-q", str(bare), "main", cwd=seed)
    return bare


def clone(remote: Path, dest: Path, *extra: str) -> GitRepo:
    git("clone", "-q", *extra, f"file://{remote}", str(dest), cwd=remote.parent)
    return GitRepo(dest, "gitml")


@pytest.fixture
def two(remote: Path, tmp_path: Path) -> Iterator[tuple[GitRepo, GitRepo]]:
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    yield a, b
    a.close()
    b.close()


def test_first_push_creates_the_branch_and_pull_brings_it(
    two: tuple[GitRepo, GitRepo], remote: Path
) -> None:
    a, b = two
    ids = write_runs(a, 3)
    result = push(a)
    assert result.remote == "origin" and result.attempts == 1
    assert set(result.pushed.runs_added) == set(ids)
    assert runs_on(remote) == set(ids)
    got = pull(b)
    assert set(got.pulled.runs_added) == set(ids) and not got.merged
    assert b.tip() == a.tip()
    again = push(a)
    assert again.pushed.empty and again.pulled.empty


def test_divergent_clones_merge_and_both_land(two: tuple[GitRepo, GitRepo], remote: Path) -> None:
    a, b = two
    ra = write_runs(a, 2)
    rb = write_runs(b, 2)
    push(a)
    result = sync(b)
    assert result.merged and set(result.pulled.runs_added) == set(ra)
    assert set(result.pushed.runs_added) == set(rb)
    assert runs_on(remote) == set(ra + rb)
    parents = git("log", "-1", "--format=%P", "gitml", cwd=b.root).split()
    assert len(parents) == 2  # a normal merge commit: git log tells who logged what
    fsck = subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=b.root, capture_output=True, text=True
    )
    assert fsck.returncode == 0 and fsck.stdout == "", fsck.stdout + fsck.stderr
    pull(a)
    assert runs_on(a.root) == set(ra + rb)


def test_unreachable_remote_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    r = GitRepo(repo, "gitml")
    write_runs(r, 1)
    git("remote", "add", "origin", str(tmp_path / "nowhere.git"), cwd=repo)
    with pytest.raises(RemoteError, match="cannot reach remote 'origin'"):
        push(r)
    assert len(runs_on(repo)) == 1


def test_no_remote_configured(repo: Path) -> None:
    r = GitRepo(repo, "gitml")
    with pytest.raises(RemoteError, match="no Git remote"):
        pull(r)


def test_nothing_on_either_side(two: tuple[GitRepo, GitRepo], remote: Path) -> None:
    a, _ = two
    result = pull(a)
    assert (result.tip, result.remote_tip, result.pulled.empty) == (None, None, True)
    result = push(a)
    assert result.pushed.empty and "gitml" not in git("branch", "--list", cwd=remote)


def test_a_refused_push_loses_nothing_and_a_later_push_lands(
    two: tuple[GitRepo, GitRepo], remote: Path
) -> None:
    a, _ = two
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'metadata pushes are frozen today' >&2\nexit 1\n")
    hook.chmod(0o755)
    ids = write_runs(a, 2)
    with pytest.raises(RemoteError, match="refused the push.*frozen today"):
        push(a)
    assert runs_on(a.root) == set(ids)
    assert "gitml" not in git("branch", "--list", cwd=remote)
    hook.unlink()
    assert set(push(a).pushed.runs_added) == set(ids)
    assert runs_on(remote) == set(ids)


def test_force_rewritten_remote_never_drops_local_runs(
    two: tuple[GitRepo, GitRepo], remote: Path, tmp_path: Path
) -> None:
    a, b = two
    ra = write_runs(a, 2)
    push(a)
    pull(b)
    # Someone replaces the remote branch with an unrelated history holding one other run.
    c = GitRepo(make_repo(tmp_path / "c"), "gitml")
    rc = write_runs(c, 1)
    git("push", "-q", "--force", str(remote), "gitml:gitml", cwd=c.root)
    got = pull(b)
    assert got.rewritten and any("rewrote" in w for w in got.warnings)
    assert runs_on(b.root) == set(ra + rc)
    push(b)
    assert runs_on(remote) == set(ra + rc)


def test_a_push_that_would_drop_runs_is_refused(two: tuple[GitRepo, GitRepo], remote: Path) -> None:
    a, _ = two
    ids = write_runs(a, 2)
    push(a)
    gone = ids[0]
    a.commit(lambda tree: {f"runs/{gone[:2]}/{gone}": None}, "purge one run")
    with pytest.raises(InvalidState, match="would remove 1 run.*--allow-drop"):
        push(a)
    assert runs_on(remote) == set(ids)
    push(a, allow_drop=True)
    assert runs_on(remote) == {ids[1]}


def test_a_run_pushed_running_and_finished_elsewhere(
    two: tuple[GitRepo, GitRepo], remote: Path
) -> None:
    a, b = two
    rid = "5a" + "e" * 30
    d = f"runs/5a/{rid}"
    a.commit(lambda tree: run_files(rid, status="RUNNING", metrics={"loss": 1.0}), "start run")
    push(a)
    pull(b)
    # The run ends on clone A (status, end time, metrics) ...
    finished = run_files(rid, status="FINISHED", end=5000, metrics={"loss": 0.1})
    a.commit(
        lambda tree: {
            f"{d}/meta.json": finished[f"{d}/meta.json"],
            f"{d}/metrics.json": finished[f"{d}/metrics.json"],
        },
        "end run",
    )
    # ... while clone B, holding the RUNNING copy, tags it and races to push first.
    b.commit(lambda tree: {f"{d}/tags.json": jdump({"reviewed": "yes"})}, "tag run")
    push(b)
    push(a)
    pull(b)
    for r in (a.root, b.root, remote):
        meta = show_json(r, "gitml", f"{d}/meta.json")
        assert (meta["status"], meta["end_time"]) == ("FINISHED", 5000)
        assert show_json(r, "gitml", f"{d}/tags.json") == {"reviewed": "yes"}
        assert show_json(r, "gitml", f"{d}/metrics.json")["loss"]["value"] == 0.1


def test_two_clones_create_the_same_experiment(two: tuple[GitRepo, GitRepo], remote: Path) -> None:
    a, b = two
    meta = "experiments/77/meta.yaml"

    def exp(created: int) -> dict[str, bytes | None]:
        text = f"artifact_location: x\ncreation_time: {created}\nexperiment_id: '77'\nlast_update_time: {created}\nlifecycle_stage: active\nname: mnist\n"
        return {meta: text.encode(), "experiments/77/tags.json": jdump({})}

    a.commit(lambda tree: exp(200), "create experiment")
    b.commit(lambda tree: exp(100), "create experiment")
    ra = write_runs(a, 1, experiment_id="77")
    rb = write_runs(b, 1, experiment_id="77")
    push(a)
    push(b)
    pull(a)
    assert git("ls-tree", "--name-only", "gitml", "experiments/", cwd=remote).split() == [
        "experiments/77"
    ]
    assert "creation_time: 100" in git("show", f"gitml:{meta}", cwd=remote)
    assert runs_on(remote) == set(ra + rb)
    assert a.tip() == b.tip() or runs_on(a.root) == runs_on(b.root)


def test_a_hand_made_conflicting_edit(
    two: tuple[GitRepo, GitRepo], remote: Path, tmp_path: Path
) -> None:
    a, b = two
    (rid,) = write_runs(a, 1, params={"lr": "0.1"})
    push(a)
    pull(b)
    p = f"runs/{rid[:2]}/{rid}/params.json"
    # A user edits the branch by hand in a worktree and breaks the JSON ...
    wt = tmp_path / "wt"
    git("worktree", "add", "-q", str(wt), "gitml", cwd=a.root)
    (wt / p).write_text('{"lr": "0.1", "note": oops}\n')
    git("commit", "-q", "-am", "hand edit", cwd=wt)
    push(a)
    # ... while clone B adds a param to the same file.
    b.commit(lambda tree: {p: jdump({"lr": "0.1", "bs": "16"})}, "add param")
    result = sync(b)
    assert any(p in w and "does not parse" in w for w in result.warnings)
    # what still reads of the broken version (as YAML) is merged with the other side's
    assert show_json(remote, "gitml", p) == {"lr": "0.1", "bs": "16", "note": "oops"}
    # the broken version is still in the history: a parent of the merge commit
    assert "oops" in git("show", f"gitml^2:{p}", cwd=b.root)


def test_registry_tags_move_with_the_branch(two: tuple[GitRepo, GitRepo], remote: Path) -> None:
    a, b = two
    write_runs(a, 1)
    git("tag", "-a", "-m", "run_id: x", "mnist@v1.0.0", cwd=a.root)
    git("tag", "-a", "-m", "promote", "mnist#prod#1", cwd=a.root)
    git("tag", "v0.1-code", cwd=a.root)  # not a registry tag: left alone
    result = push(a)
    assert result.pushed.tags_added == ("mnist#prod#1", "mnist@v1.0.0")
    assert set(git("tag", cwd=remote).split()) == {"mnist#prod#1", "mnist@v1.0.0"}
    got = pull(b)
    assert got.pulled.tags_added == ("mnist#prod#1", "mnist@v1.0.0")
    assert git("cat-file", "-t", "mnist@v1.0.0", cwd=b.root).strip() == "tag"


def test_shallow_single_branch_clone_pulls_and_pushes(
    two: tuple[GitRepo, GitRepo], remote: Path, tmp_path: Path
) -> None:
    a, _ = two
    ids = write_runs(a, 3)
    push(a)
    ci = clone(remote, tmp_path / "ci", "--depth", "1", "--single-branch")
    assert (ci.common_dir / "shallow").exists()
    got = pull(ci)
    assert set(got.pulled.runs_added) == set(ids)
    head = git("rev-parse", "HEAD", cwd=ci.root).strip()
    (mine,) = write_runs(ci, 1, commit=head)
    push(ci)
    assert runs_on(remote) == set(ids) | {mine}
    assert (
        show_json(remote, "gitml", f"runs/{mine[:2]}/{mine}/meta.json")["source"]["commit"] == head
    )


def test_push_to_a_path_remote(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "plain.git"
    git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    r = GitRepo(repo, "gitml")
    ids = write_runs(r, 2)
    result = push(r, str(bare))
    assert set(result.pushed.runs_added) == set(ids) and runs_on(bare) == set(ids)
    assert run_changes(r, None, r.tree_of(r.tip())).added == tuple(sorted(ids))


# -- SSH ----------------------------------------------------------------------------------
@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An OpenSSH server on a loopback port, with its own config and keys."""
    if not Path("/usr/sbin/sshd").exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server (/usr/sbin/sshd) is not installed")
    d = tmp_path / "ssh"
    d.mkdir()
    for name in ("host", "user", "stranger"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
        )
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        f"PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {d / 'sshd.pid'}\n"
        "SetEnv GIT_CONFIG_NOSYSTEM=1\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.skip("sshd did not start")

    def command(key: str) -> str:
        return (
            f"ssh -i {d / key} -p {port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            "-o BatchMode=yes -o LogLevel=ERROR"
        )

    yield {
        "user": getpass.getuser(),
        "ok": command("user"),
        "bad": command("stranger"),
        "port": str(port),
    }
    proc.terminate()
    proc.wait(timeout=5)


def test_ssh_remote(
    ssh_server: dict[str, str],
    remote: Path,
    two: tuple[GitRepo, GitRepo],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = two
    url = f"{ssh_server['user']}@127.0.0.1:{remote}"
    for r in (a, b):
        git("remote", "set-url", "origin", url, cwd=r.root)
    monkeypatch.setenv("GIT_SSH_COMMAND", ssh_server["ok"])
    ra, rb = write_runs(a, 2), write_runs(b, 1)
    push(a)
    result = sync(b)
    assert set(result.pulled.runs_added) == set(ra) and set(result.pushed.runs_added) == set(rb)
    assert runs_on(remote) == set(ra + rb)
    monkeypatch.setenv("GIT_SSH_COMMAND", ssh_server["bad"])
    with pytest.raises(RemoteError, match="authentication to 'origin' failed"):
        pull(a)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv(
        "GIT_SSH_COMMAND", ssh_server["ok"].replace(f"-p {ssh_server['port']}", f"-p {closed}")
    )
    with pytest.raises(RemoteError, match="cannot reach remote 'origin'"):
        push(a)


# -- stress ---------------------------------------------------------------------------------
_WORKER = """
import sys, time
sys.path.insert(0, {root!r})
from tests.store.test_merge import write_runs
from gitml.store.repo import GitRepo
from gitml.store.sync import push
from gitml.tracking.branch_rules import BRANCH_RULES
repo = GitRepo({path!r}, "gitml")
for _ in range(25):
    write_runs(repo, 1)
while time.time() < {start}:
    time.sleep(0.005)
result = push(repo, rules=BRANCH_RULES)
print(result.attempts)
"""


@pytest.mark.slow
def test_eight_clones_push_at_the_same_moment(remote: Path, tmp_path: Path) -> None:
    clones = [clone(remote, tmp_path / f"c{i}") for i in range(8)]
    start = time.time() + 4
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER.format(root=str(ROOT), path=str(c.root), start=start),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for c in clones
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err[-2000:] for _, err in outs]
    attempts = [int(out.split()[-1]) for out, _ in outs]
    assert max(attempts) > 1  # they really raced, and retried
    assert len(runs_on(remote)) == 200
    assert (
        subprocess.run(["git", "fsck", "--strict"], cwd=remote, capture_output=True).returncode == 0
    )
    fresh = clone(remote, tmp_path / "fresh", "--depth", "1", "--single-branch")
    assert len(pull(fresh).pulled.runs_added) == 200
    assert len(runs_on(fresh.root)) == 200


# -- through the tracking API -----------------------------------------------------------------
def test_autopush_at_the_end_of_every_run(two: tuple[GitRepo, GitRepo], remote: Path) -> None:
    import gitml as mlflow

    a, _ = two
    git("config", "gitml.autopush", "true", cwd=a.root)
    mlflow.set_tracking_uri(str(a.root))
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.5)
    assert run.info.run_id in runs_on(remote)
    meta = show_json(remote, "gitml", f"runs/{run.info.run_id[:2]}/{run.info.run_id}/meta.json")
    assert meta["status"] == "FINISHED"


def test_api_runs_in_a_shallow_ci_clone_and_the_same_experiment_name(
    two: tuple[GitRepo, GitRepo], remote: Path, tmp_path: Path
) -> None:
    import gitml as mlflow

    a, _ = two
    mlflow.set_tracking_uri(str(a.root))
    mlflow.set_experiment("mnist")
    with mlflow.start_run() as first:
        mlflow.log_param("lr", "0.1")
    push(a)
    ci = clone(remote, tmp_path / "ci", "--depth", "1", "--single-branch")
    head = git("rev-parse", "HEAD", cwd=ci.root).strip()
    mlflow.set_tracking_uri(str(ci.root))
    mlflow.set_experiment("mnist")  # created here too, before pulling: the same id
    with mlflow.start_run() as second:
        mlflow.log_metric("acc", 0.9)
    result = sync(ci)
    assert result.merged and first.info.run_id in result.pulled.runs_added
    assert (
        git("ls-tree", "--name-only", "gitml", "experiments/", cwd=remote).count("\n") == 2
    )  # Default + mnist
    exp = mlflow.get_experiment_by_name("mnist")
    found = {r.info.run_id for r in mlflow.MlflowClient().search_runs([exp.experiment_id])}
    assert found == {first.info.run_id, second.info.run_id}
    assert mlflow.get_run(second.info.run_id).data.tags["mlflow.source.git.commit"] == head


def test_a_clashing_tag_without_reconcile_is_kept_local_with_a_warning(
    two: tuple[GitRepo, GitRepo], remote: Path
) -> None:
    a, b = two
    git("tag", "-a", "-m", "a", "m@v1.0.0", cwd=a.root)
    write_runs(a, 1)
    push(a)
    (b.root / "train.py").write_text("other\n")
    git("commit", "-q", "-am", "other", cwd=b.root)
    git("tag", "-a", "-m", "b", "m@v1.0.0", cwd=b.root)
    (rb,) = write_runs(b, 1)
    assert any("m@v1.0.0" in w and "kept the local one" in w for w in pull(b).warnings)
    result = push(b)
    assert any("m@v1.0.0" in w and "not pushed" in w for w in result.warnings)
    assert rb in runs_on(remote)  # the branch still lands
    assert git("tag", "-l", "--format=%(contents)", "m@v1.0.0", cwd=remote).strip() == "a"


def test_api_run_pushed_running_then_finished_on_another_clone(
    two: tuple[GitRepo, GitRepo], remote: Path
) -> None:
    import gitml as mlflow

    a, b = two
    mlflow.set_tracking_uri(str(a.root))
    run = mlflow.start_run()
    rid = run.info.run_id
    mlflow.log_metric("loss", 1.0, step=0)
    mlflow.flush()
    push(a)
    assert show_json(remote, "gitml", f"runs/{rid[:2]}/{rid}/meta.json")["status"] == "RUNNING"
    pull(b)
    client_b = mlflow.MlflowClient(str(b.root))
    client_b.set_tag(rid, "reviewed", "yes")
    client_b.set_terminated(rid, "KILLED")  # e.g. a scheduler gave up on it
    push(b)
    mlflow.set_tracking_uri(str(a.root))
    mlflow.log_metric("loss", 0.5, step=1)  # the run goes on and ends on clone A
    mlflow.end_run()
    result = sync(a)
    assert result.merged
    meta = show_json(remote, "gitml", f"runs/{rid[:2]}/{rid}/meta.json")
    assert meta["status"] == "FINISHED"  # both terminal: the later end (clone A's) wins
    assert show_json(remote, "gitml", f"runs/{rid[:2]}/{rid}/tags.json")["reviewed"] == "yes"
    assert show_json(remote, "gitml", f"runs/{rid[:2]}/{rid}/metrics.json")["loss"]["step"] == 1
    got = mlflow.MlflowClient(str(a.root)).get_run(rid)
    assert got.data.metrics["loss"] == 0.5 and got.data.tags["reviewed"] == "yes"


def test_permanent_deletions_spread_and_a_reused_name_survives(
    two: tuple[GitRepo, GitRepo], remote: Path
) -> None:
    from gitml.client import MlflowClient
    from gitml.tracking.tracker import reset_all

    a, b = two
    ca = MlflowClient(str(a.root))
    exp = ca.create_experiment("scratch")
    gone = ca.create_run(exp).info.run_id
    ca.set_terminated(gone)
    kept = ca.create_run("0").info.run_id
    ca.set_terminated(kept)
    push(a)
    pull(b)
    assert {gone, kept} <= runs_on(b.root)
    ca.delete_experiment(exp, permanent=True)
    new_exp = ca.create_experiment("scratch")  # the name is free again, same derived id
    push(a)  # removing the purged run from the remote is allowed: it was meant
    assert gone not in runs_on(remote)
    reset_all()
    cb = MlflowClient(str(b.root))
    extra = cb.create_run("0").info.run_id  # b diverges, still holding the purged run
    cb.set_terminated(extra)
    sync(b)
    on_b = runs_on(b.root)
    assert gone not in on_b and {kept, extra} <= on_b
    assert cb.get_experiment(new_exp).name == "scratch"
    assert gone not in runs_on(remote)

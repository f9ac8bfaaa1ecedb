"""Bad input and faults: a clear error, and nothing already logged is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import gitml as mlflow
from gitml.client import MlflowClient
from gitml.exceptions import (
    CorruptMetadata,
    GitMLError,
    InvalidParameterValue,
    RepositoryError,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from gitml.tracking import tracker as tracker_mod
from tests.conftest import git, make_repo


def test_not_a_repository_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with pytest.raises(RepositoryError, match="git init"):
        mlflow.start_run()


def test_repository_without_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git("init", "-q", cwd=root)
    monkeypatch.chdir(root)
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1)
    got = mlflow.get_run(run.info.run_id)
    assert got.data.metrics == {"m": 1.0}
    assert "mlflow.source.git.commit" not in got.data.tags
    assert git("status", "--porcelain", cwd=root) == ""


def test_detached_head(repo: Path) -> None:
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    git("checkout", "-q", "--detach", cwd=repo)
    with mlflow.start_run() as run:
        pass
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["mlflow.source.git.commit"] == head
    assert "mlflow.source.git.branch" not in tags


def test_bare_repository(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "src")
    bare = tmp_path / "bare.git"
    git("clone", "-q", "--bare", str(src), str(bare), cwd=tmp_path)
    client = MlflowClient(str(bare))
    run = client.create_run("0")
    client.log_metric(run.info.run_id, "m", 2.0)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 2.0}
    assert git("rev-parse", "--verify", "gitml", cwd=bare).strip()


@pytest.mark.parametrize("key", ["../x", "a//b", "/abs", "a/", "bad$char", "", "x" * 251, "a/../b", "./a"])
def test_invalid_metric_names(repo: Path, key: str) -> None:
    with mlflow.start_run():
        with pytest.raises(InvalidParameterValue):
            mlflow.log_metric(key, 1.0)
        with pytest.raises(InvalidParameterValue):
            mlflow.log_param(key, 1)


@pytest.mark.parametrize("key", ["a", "a.b", "a-b_c", "with space", "a/b/c", "x:y", "x" * 250])
def test_valid_names(repo: Path, key: str) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric(key, 1.0)
        mlflow.log_param(key, "v")
        mlflow.set_tag(key, "t")
    got = mlflow.get_run(run.info.run_id)
    assert got.data.metrics[key] == 1.0 and got.data.params[key] == "v" and got.data.tags[key] == "t"


def test_value_limits_and_bad_values(repo: Path) -> None:
    with mlflow.start_run():
        mlflow.log_param("ok", "x" * 6000)
        with pytest.raises(InvalidParameterValue, match="6000"):
            mlflow.log_param("long", "x" * 6001)
        mlflow.set_tag("ok", "x" * 8000)
        with pytest.raises(InvalidParameterValue, match="8000"):
            mlflow.set_tag("long", "x" * 8001)
        with pytest.raises(InvalidParameterValue):
            mlflow.log_metric("m", "not a number")  # type: ignore[arg-type]
        with pytest.raises(InvalidParameterValue):
            mlflow.log_metric("m", 1.0, step="x")  # type: ignore[arg-type]


def test_log_batch_past_mlflow_limits(repo: Path) -> None:
    from gitml.entities import Metric, Param, RunTag

    client = MlflowClient()
    run = client.create_run("0")
    rid = run.info.run_id
    client.log_batch(rid, metrics=[Metric("m", float(i), 0, i) for i in range(1001)])  # split, not refused
    client.log_batch(rid, params=[Param(f"p{i}", "v") for i in range(101)], tags=[RunTag(f"t{i}", "v") for i in range(101)])
    got = client.get_run(rid)
    assert got.data.metrics["m"] == 1000.0 and len(got.data.params) == 101
    assert len(client.get_metric_history(rid, "m")) == 1001


def test_unknown_ids(repo: Path) -> None:
    client = MlflowClient()
    with pytest.raises(ResourceDoesNotExist):
        client.get_run("0" * 32)
    with pytest.raises(InvalidParameterValue):
        client.get_run("not-a-run-id")
    with pytest.raises(ResourceDoesNotExist):
        client.get_experiment("12345")
    with pytest.raises(ResourceDoesNotExist):
        client.log_metric("f" * 32, "m", 1.0)
    assert client.get_experiment_by_name("nope") is None


def test_hand_edited_invalid_file_is_named_and_the_rest_readable(repo: Path) -> None:
    with mlflow.start_run() as good:
        mlflow.log_metric("m", 1.0)
    with mlflow.start_run() as bad:
        mlflow.log_param("p", "1")
    bad_id = bad.info.run_id
    path = f"runs/{bad_id[:2]}/{bad_id}/params.json"
    # A user edits the branch by hand (through a worktree) into something that does not parse.
    wt = repo.parent / "wt"
    git("worktree", "add", "-q", str(wt), "gitml", cwd=repo)
    (wt / path).write_text("{ not: json ]\n")
    git("commit", "-qam", "hand edit", cwd=wt)
    tracker_mod.reset_all()
    with pytest.raises(CorruptMetadata, match=path.replace("/", ".")):
        mlflow.get_run(bad_id)
    assert mlflow.get_run(good.info.run_id).data.metrics == {"m": 1.0}
    found = MlflowClient().search_runs(["0"])
    assert [r.info.run_id for r in found] == [good.info.run_id]
    # A file that parses but breaks its schema is named too.
    (wt / path).write_text(json.dumps({"p": 5}))
    git("commit", "-qam", "hand edit 2", cwd=wt)
    with pytest.raises(CorruptMetadata, match="params.json"):
        mlflow.get_run(bad_id)


def test_experiment_lifecycle_and_permanent_delete(repo: Path) -> None:
    client = MlflowClient()
    exp = client.create_experiment("churn")
    with pytest.raises(ResourceAlreadyExists):
        client.create_experiment("churn")
    run = client.create_run(exp)
    client.set_terminated(run.info.run_id)
    client.delete_experiment(exp)
    assert client.get_experiment(exp).lifecycle_stage == "deleted"
    with pytest.raises(ResourceAlreadyExists, match="restore"):
        client.create_experiment("churn")
    with pytest.raises(GitMLError):
        mlflow.set_experiment("churn")
    client.restore_experiment(exp)
    assert client.get_experiment(exp).lifecycle_stage == "active"
    client.rename_experiment(exp, "churn-v2")
    assert client.get_experiment_by_name("churn-v2").experiment_id == exp
    assert client.get_experiment_by_name("churn") is None
    client.set_experiment_tag(exp, "owner", "ana")
    assert client.get_experiment(exp).tags == {"owner": "ana"}
    client.delete_experiment(exp, permanent=True)
    with pytest.raises(ResourceDoesNotExist):
        client.get_run(run.info.run_id)
    new = client.create_experiment("churn-v2")  # the name is free again
    assert client.get_experiment(new).name == "churn-v2"
    # Git history keeps the record of what was deleted.
    log = git("log", "--format=%s", "gitml", cwd=repo)
    assert "permanently deleted" in log


def test_run_delete_restore_permanent(repo: Path) -> None:
    client = MlflowClient()
    run = client.create_run("0")
    rid = run.info.run_id
    client.set_terminated(rid)
    client.delete_run(rid)
    with pytest.raises(GitMLError, match="deleted"):
        client.log_metric(rid, "m", 1.0)
    client.restore_run(rid)
    client.log_metric(rid, "m", 1.0)
    assert client.get_run(rid).data.metrics == {"m": 1.0}
    client.delete_run(rid, permanent=True)
    with pytest.raises(ResourceDoesNotExist):
        client.get_run(rid)


def test_default_experiment_cannot_be_deleted(repo: Path) -> None:
    client = MlflowClient()
    client.create_run("0")
    with pytest.raises(GitMLError, match="Default"):
        client.delete_experiment("0")


def test_newer_format_is_refused(repo: Path) -> None:
    with mlflow.start_run():
        pass
    wt = repo.parent / "wt"
    git("worktree", "add", "-q", str(wt), "gitml", cwd=repo)
    (wt / "gitml.yaml").write_text("format: 99\n")
    git("commit", "-qam", "from the future", cwd=wt)
    tracker_mod.reset_all()
    with pytest.raises(GitMLError, match="upgrade gitml"):
        mlflow.start_run()


WORKER = textwrap.dedent(
    """
    import sys, gitml
    n = int(sys.argv[1])
    gitml.set_experiment("shared")
    for r in range(int(sys.argv[2])):
        with gitml.start_run(run_name=f"w{n}-r{r}"):
            gitml.log_param("worker", n)
            for step in range(50):
                gitml.log_metric("loss", 1.0 / (step + 1), step=step)
                if step % 10 == 0:
                    gitml.flush()
    """
)


@pytest.mark.slow
def test_eight_processes_log_at_once(repo: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(n), "3"], cwd=repo, stderr=subprocess.PIPE)
        for n in range(8)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()
    client = MlflowClient()
    exp = client.get_experiment_by_name("shared")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    assert len(runs) == 24
    assert {r.info.status for r in runs} == {"FINISHED"}
    for r in runs:
        history = client.get_metric_history(r.info.run_id, "loss")
        assert [m.step for m in history] == list(range(50))
    assert subprocess.run(["git", "fsck", "--no-progress"], cwd=repo, capture_output=True).returncode == 0


KILLED = textwrap.dedent(
    """
    import sys, time, gitml
    run = gitml.start_run()
    print(run.info.run_id, flush=True)
    gitml.log_param("lr", "0.1")
    for step in range(500):
        gitml.log_metric("loss", float(step), step=step)
    print("logged", flush=True)
    time.sleep(600)
    """
)


def test_sigkill_mid_run_loses_nothing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITML_FLUSH_INTERVAL", "3600")  # nothing reaches the branch but the start
    proc = subprocess.Popen([sys.executable, "-c", KILLED], cwd=repo, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "logged"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    tracker_mod.reset_all()
    journals = list((repo / ".git" / "gitml" / "journal").glob("*.jsonl"))
    assert journals, "the killed process left its journal"
    # The next gitml call recovers the orphaned journal.
    client = MlflowClient()
    client.create_run("0")
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.info.end_time is not None
    assert run.data.params == {"lr": "0.1"}
    assert run.data.metrics["loss"] == 499.0
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(500))
    assert not list((repo / ".git" / "gitml" / "journal").glob(f"{run_id}-*.jsonl"))


def test_recover_command_is_idempotent(repo: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED], cwd=repo, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    proc.stdout.readline()
    proc.kill()
    proc.wait()
    out = subprocess.run([sys.executable, "-m", "gitml.cli", "runs", "recover"], cwd=repo, capture_output=True, text=True)
    assert f"Recovered run {run_id}" in out.stdout
    again = subprocess.run([sys.executable, "-m", "gitml.cli", "runs", "recover"], cwd=repo, capture_output=True, text=True)
    assert "Nothing to recover" in again.stdout
    assert len(MlflowClient().get_metric_history(run_id, "loss")) == 500


def test_background_flush_commits_without_end_run(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITML_FLUSH_INTERVAL", "0.2")
    tracker_mod.reset_all()
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
        deadline = time.time() + 10
        path = f"gitml:runs/{run.info.run_id[:2]}/{run.info.run_id}/metrics.json"
        while time.time() < deadline:
            if subprocess.run(["git", "cat-file", "-e", path], cwd=repo).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the background flush never committed")


def test_history_is_appended_in_chunks_and_compacted_at_end(repo: Path) -> None:
    with mlflow.start_run() as run:
        for flush in range(3):
            for step in range(10):
                mlflow.log_metric("m", step, step=flush * 10 + step)
            mlflow.flush()
        hist = f"gitml:runs/{run.info.run_id[:2]}/{run.info.run_id}/history"
        listing = git("ls-tree", "--name-only", hist, cwd=repo).split()
        assert len(listing) == 3
    listing = git("ls-tree", "--name-only", hist, cwd=repo).split()
    assert len(listing) == 1
    assert len(MlflowClient().get_metric_history(run.info.run_id, "m")) == 30


def test_hand_edited_invalid_yaml_names_the_file(repo: Path) -> None:
    client = MlflowClient()
    broken = client.create_experiment("broken")
    fine = client.create_experiment("fine")
    run = client.create_run(fine)
    client.set_terminated(run.info.run_id)
    wt = repo.parent / "wt-yaml"
    git("worktree", "add", "-q", str(wt), "gitml", cwd=repo)
    (wt / "experiments" / broken / "meta.yaml").write_text("name: [unclosed\n  lifecycle: : :\n")
    git("commit", "-qam", "hand edit", cwd=wt)
    tracker_mod.reset_all()
    client = MlflowClient()
    with pytest.raises(CorruptMetadata, match=f"experiments/{broken}/meta.yaml"):
        client.get_experiment(broken)
    assert client.get_experiment(fine).name == "fine"
    assert {e.name for e in client.search_experiments()} == {"fine", "Default"}
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    assert [r.info.run_id for r in client.search_runs([fine])] == [run.info.run_id]


STAGED_KILLED = textwrap.dedent(
    """
    import os, time, gitml
    from urllib.parse import urlparse
    run = gitml.start_run()
    print(run.info.run_id, flush=True)
    gitml.log_metric("loss", 1.0)
    folder = urlparse(gitml.get_artifact_uri()).path
    os.makedirs(os.path.join(folder, "checkpoints"), exist_ok=True)
    with open(os.path.join(folder, "checkpoints", "epoch-1.txt"), "w") as f:
        f.write("weights after epoch 1")
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("written straight into the artifact folder")
    print("written", flush=True)
    time.sleep(600)
    """
)


def test_recover_logs_the_staging_folder_of_a_killed_run(repo: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", STAGED_KILLED], cwd=repo, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "written"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    staging = repo / ".git" / "gitml" / "staging" / run_id
    assert staging.is_dir()
    cli = [sys.executable, "-m", "gitml.cli", "runs", "recover"]
    out = subprocess.run(cli, cwd=repo, capture_output=True, text=True)
    assert f"Recovered run {run_id}" in out.stdout, out.stderr
    tracker_mod.reset_all()
    client = MlflowClient()
    assert client.get_run(run_id).info.status == "KILLED"
    assert sorted(f.path for f in client.list_artifacts(run_id)) == ["checkpoints", "notes.txt"]
    dst = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="checkpoints/epoch-1.txt", dst_path=str(repo.parent / "dl")))
    assert dst.read_text() == "weights after epoch 1"
    assert not staging.exists()
    commits = git("rev-list", "--count", "gitml", cwd=repo)
    again = subprocess.run(cli, cwd=repo, capture_output=True, text=True)
    assert "Nothing to recover" in again.stdout
    assert git("rev-list", "--count", "gitml", cwd=repo) == commits  # idempotent: nothing new


def test_recover_logs_a_folder_an_ended_run_could_not(repo: Path, tmp_path: Path) -> None:
    from urllib.parse import urlparse

    from gitml.exceptions import InvalidParameterValue

    secret = tmp_path / "secret.txt"
    secret.write_text("not for the remote")
    with pytest.raises(InvalidParameterValue):
        with mlflow.start_run() as run:
            folder = Path(urlparse(mlflow.get_artifact_uri()).path)
            (folder / "ok.txt").write_text("fine")
            os.symlink(secret, folder / "leak.txt")
    run_id = run.info.run_id
    assert folder.is_dir() and MlflowClient().list_artifacts(run_id) == []
    os.unlink(folder / "leak.txt")  # the user fixes what the end refused
    cli = [sys.executable, "-m", "gitml.cli", "runs", "recover"]
    out = subprocess.run(cli, cwd=repo, capture_output=True, text=True)
    assert f"Recovered run {run_id}" in out.stdout, out.stderr
    tracker_mod.reset_all()
    assert [f.path for f in MlflowClient().list_artifacts(run_id)] == ["ok.txt"]
    assert MlflowClient().get_run(run_id).info.status == "FINISHED"
    assert not folder.exists()
    assert "Nothing to recover" in subprocess.run(cli, cwd=repo, capture_output=True, text=True).stdout

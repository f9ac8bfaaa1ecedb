"""`gitml push/pull/sync/diff` as a user runs them: exit codes, stdout and stderr apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gitml.store.repo import GitRepo
from tests.conftest import git, make_repo
from tests.store.test_merge import write_runs

ROOT = Path(__file__).resolve().parents[2]


def gitml(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", "from gitml.cli import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_push_then_pull_say_what_moved(clones: tuple[Path, Path, Path]) -> None:
    bare, a, b = clones
    ids = write_runs(GitRepo(a, "gitml"), 2)
    out = gitml("push", cwd=a)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Pushed to origin/gitml: 2 runs added, 0 updated, 0 registry tags added\n"
    assert out.stderr == ""
    out = gitml("pull", "--json", cwd=b)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert sorted(data["pulled"]["runs_added"]) == sorted(ids) and data["remote"] == "origin"
    out = gitml("sync", "-q", cwd=b)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    out = gitml("pull", "origin", cwd=b)
    assert out.stdout == "Pulled from origin/gitml: already up to date\n"


def test_errors_are_one_line_and_exit_1(clones: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, a, _ = clones
    out = gitml("push", str(tmp_path / "missing.git"), cwd=a)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("Error: cannot reach remote") and out.stderr.count("\n") == 1
    lonely = make_repo(tmp_path / "lonely")
    out = gitml("pull", cwd=lonely)
    assert out.returncode == 1 and "no Git remote" in out.stderr


def test_refused_push_and_drop_guard(clones: tuple[Path, Path, Path]) -> None:
    bare, a, _ = clones
    r = GitRepo(a, "gitml")
    ids = write_runs(r, 2)
    assert gitml("push", "-q", cwd=a).returncode == 0
    r.commit(lambda tree: {f"runs/{ids[0][:2]}/{ids[0]}": None}, "drop a run")
    out = gitml("push", cwd=a)
    assert (
        out.returncode == 1 and "would remove 1 run" in out.stderr and "--allow-drop" in out.stderr
    )
    out = gitml("push", "--allow-drop", cwd=a)
    assert out.returncode == 0, out.stderr


def test_help_of_every_command(clones: tuple[Path, Path, Path]) -> None:
    _, a, _ = clones
    for cmd in ("push", "pull", "sync", "diff"):
        out = gitml(cmd, "--help", cwd=a)
        assert (
            out.returncode == 0
            and "Usage:" in out.stdout
            and "REMOTE" in out.stdout
            or cmd == "diff"
        )


def test_diff_cli_md_and_json(repo: Path) -> None:
    env_script = (
        "import gitml, sys; gitml.set_tracking_uri('.');\n"
        "with gitml.start_run():\n"
        "    gitml.log_metric('accuracy', float(sys.argv[1])); gitml.log_param('lr', sys.argv[1])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", env_script, "0.5"], cwd=repo, check=True, env=env)
    git("checkout", "-q", "-b", "feature", cwd=repo)
    (repo / "train.py").write_text("v2\n")
    git("commit", "-q", "-am", "v2", cwd=repo)
    subprocess.run([sys.executable, "-c", env_script, "0.75"], cwd=repo, check=True, env=env)
    out = gitml("diff", "--md", cwd=repo)
    assert out.returncode == 0, out.stderr
    assert "| metrics | accuracy | 0.5" in out.stdout and "▲ +0.25 (+50.00%) better" in out.stdout
    out = gitml("diff", "main", "feature", "--json", cwd=repo)
    data = json.loads(out.stdout)
    assert data["metrics"][0]["better"] is True and data["a"]["ref"] == "main"
    out = gitml("diff", "nope", cwd=repo)
    assert out.returncode == 1 and out.stderr.startswith("Error: 'nope' is neither")
    a_id, b_id = data["a"]["run_id"], data["b"]["run_id"]
    out = gitml("diff", a_id[:12], b_id[:12], "--json", cwd=repo)  # as `gitml runs list` shows them
    assert out.returncode == 0, out.stderr
    assert (json.loads(out.stdout)["a"]["run_id"], json.loads(out.stdout)["b"]["run_id"]) == (a_id, b_id)


def test_a_clashing_registry_tag_is_renumbered_on_push(clones: tuple[Path, Path, Path]) -> None:
    bare, a, b = clones
    for clone, text in ((a, "a\n"), (b, "b\n")):
        (clone / "train.py").write_text(text)
        git("commit", "-q", "-am", f"model {text.strip()}", cwd=clone)
        git("tag", "-a", "-m", f"from {text.strip()}", "mnist@v1.0.0", cwd=clone)
    assert gitml("push", "-q", cwd=a).returncode == 0
    out = gitml("push", cwd=b)
    assert out.returncode == 0, out.stderr
    assert "Renumbered local tag mnist@v1.0.0 as mnist@v2.0.0" in out.stdout
    assert set(git("tag", cwd=bare).split()) == {"mnist@v1.0.0", "mnist@v2.0.0"}
    msg_v1 = git("tag", "-l", "--format=%(contents)", "mnist@v1.0.0", cwd=bare)
    assert "from a" in msg_v1  # the tag pushed first is never moved


def test_push_and_pull_move_the_artifacts_of_the_runs_they_move(
    clones: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, a, b = clones
    shared = tmp_path / "dvc-remote"
    for clone in (a, b):
        git("config", "gitml.artifactRemote", str(shared), cwd=clone)
    script = (
        "import gitml\n"
        "with gitml.start_run() as run:\n"
        "    gitml.log_text('weights v1', 'model/weights.txt')\n"
        "print(run.info.run_id)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run_id = subprocess.run(
        [sys.executable, "-c", script], cwd=a, capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    pushed = gitml("push", cwd=a)
    assert pushed.returncode == 0, pushed.stderr
    assert "Artifacts pushed" in pushed.stdout and "1 object" in pushed.stdout
    assert any(p.is_file() for p in shared.rglob("*"))
    pulled = gitml("pull", "--json", cwd=b)
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["artifacts_pulled"]["failed"] == []
    # the bytes came with the pull: reading them needs the remote no more
    import shutil

    shutil.rmtree(shared)
    got = gitml("artifacts", "download", run_id, "model/weights.txt", "-d", str(tmp_path / "out"), cwd=b)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out" / "model" / "weights.txt").read_text() == "weights v1"


def test_a_permanent_deletion_is_reported_by_the_push_that_spreads_it(
    clones: tuple[Path, Path, Path],
) -> None:
    _, a, b = clones
    ids = write_runs(GitRepo(a, "gitml"), 2)
    assert gitml("push", "-q", cwd=a).returncode == 0
    assert gitml("pull", "-q", cwd=b).returncode == 0
    out = gitml("runs", "delete", ids[0], "--permanent", cwd=a)
    assert out.returncode == 0, out.stderr
    out = gitml("push", cwd=a)  # was "already up to date", though it pushed the purge
    assert out.returncode == 0, out.stderr
    assert out.stdout == (
        "Pushed to origin/gitml: 0 runs added, 0 updated, 1 removed, "
        "0 registry tags added\n"
    )
    assert json.loads(gitml("push", "--json", cwd=a).stdout)["pushed"]["runs_removed"] == []
    out = gitml("pull", cwd=b)
    assert "1 removed (purged upstream)" in out.stdout, out

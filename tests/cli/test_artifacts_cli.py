"""`gitml artifacts push|pull|status|gc|list|download`: exit codes, stdout and stderr apart."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

import gitml
from tests.artifacts.conftest import make_files
from tests.conftest import git, run_cli


@pytest.fixture
def logged(repo: Path, tmp_path: Path) -> str:
    git("config", "gitml.artifactRemote", str(tmp_path / "remote"), cwd=repo)
    make_files(repo / "out", {"a.txt": "A", "sub/b.txt": "BB"})
    with gitml.start_run() as run:
        gitml.log_artifacts("out", "plots")
        gitml.log_text("hi", "note.txt")
    return str(run.info.run_id)


def test_status_push_status_pull(capsys: pytest.CaptureFixture[str], logged: str, repo: Path) -> None:
    code, out, err = run_cli(capsys, "artifacts", "status", "--json")
    assert code == 0 and err == ""
    assert len(json.loads(out)["local_only"]) == 4
    code, out, err = run_cli(capsys, "artifacts", "push")
    assert (code, err) == (0, "") and out.startswith("Pushed 4 object(s)")
    code, out, _ = run_cli(capsys, "artifacts", "status")
    assert code == 0 and "synced       4" in out.replace("-", " ")
    shutil.rmtree(repo / ".git/gitml/artifacts/cache")
    code, out, err = run_cli(capsys, "artifacts", "pull", "--run", logged, "--json")
    assert (code, err) == (0, "") and len(json.loads(out)["transferred"]) == 4


def test_list_and_download(capsys: pytest.CaptureFixture[str], logged: str, tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "artifacts", "list", logged, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [
        {"path": "note.txt", "is_dir": False, "file_size": 2},
        {"path": "plots", "is_dir": True, "file_size": None},
    ]
    code, out, _ = run_cli(capsys, "artifacts", "list", f"runs:/{logged}/plots")
    assert code == 0 and "plots/sub/" in out and "plots/a.txt" in out
    code, out, err = run_cli(capsys, "artifacts", "download", logged, "plots", "-d", str(tmp_path / "dl"))
    assert (code, err) == (0, "") and out.strip() == str(tmp_path / "dl" / "plots")
    assert (tmp_path / "dl/plots/sub/b.txt").read_text() == "BB"


def test_errors_are_one_line_on_stderr(capsys: pytest.CaptureFixture[str], logged: str, tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "artifacts", "download", logged, "../etc/passwd", "-d", str(tmp_path))
    assert code == 1 and out == "" and err.startswith("Error: invalid artifact path") and err.count("\n") == 1
    code, out, err = run_cli(capsys, "artifacts", "download", logged, "nope")
    assert code == 1 and f"run {logged} has no artifact 'nope'" in err
    code, _, err = run_cli(capsys, "artifacts", "list", f"runs:/{logged}/x", "y")
    assert code == 2 and "either" in err


def test_pull_reports_lost_objects_and_exits_1(capsys: pytest.CaptureFixture[str], logged: str, repo: Path) -> None:
    assert run_cli(capsys, "artifacts", "push")[0] == 0
    shutil.rmtree(repo / ".git/gitml/artifacts/cache")
    remote = Path(git("config", "gitml.artifactRemote", cwd=repo).strip())
    note = hashlib.md5(b"hi").hexdigest()
    (remote / "files/md5" / note[:2] / note[2:]).unlink()
    code, out, err = run_cli(capsys, "artifacts", "pull")
    assert code == 1 and out.startswith("Pulled 3 object(s)")  # the folder's two files and manifest
    assert err == f"Error: 1 object(s) could not be moved: {note}\n"


def test_gc(capsys: pytest.CaptureFixture[str], logged: str) -> None:
    code, out, _ = run_cli(capsys, "artifacts", "gc", "--dry-run", "--min-age", "0")
    assert code == 0 and out.strip() == "Would remove 0 object(s)"
    gitml.MlflowClient().delete_run(logged)
    code, out, _ = run_cli(capsys, "artifacts", "gc", "--json")  # objects this young are kept
    assert code == 0 and json.loads(out)["removed"] == []
    code, out, _ = run_cli(capsys, "artifacts", "gc", "--json", "--min-age", "0")
    assert code == 0 and len(json.loads(out)["removed"]) == 4


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "artifacts", "--help")
    assert code == 0
    for name in ("push", "pull", "status", "gc", "list", "download"):
        assert name in out

"""`gitml run` end to end: real projects in temporary repositories, real child processes."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gitml.client import GitMLClient
from tests.conftest import git, run_cli

TRAIN = """\
import argparse, sys
import gitml as mlflow
ap = argparse.ArgumentParser()
ap.add_argument("--alpha", type=float)
ap.add_argument("--msg", default="")
args, rest = ap.parse_known_args()
mlflow.log_metric("score", args.alpha * 2)
mlflow.log_param("argv", repr(sys.argv[1:]))
sys.exit(int(args.msg == "fail"))
"""

MLPROJECT = """\
name: demo
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5, max: 1}
      msg: {type: string, default: ok}
    command: "python train.py --alpha {alpha} --msg {msg}"
  sleepy:
    command: "python -c 'import time; time.sleep(60)'"
"""


def project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "project", cwd=root)
    return root


def branch_tip(root: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "-q", "--verify", "gitml"], cwd=root, capture_output=True, text=True
    ).stdout


def last_run(root: Path, out: str) -> object:
    run_id = out.split()[-2]
    return GitMLClient(root).get_run(run_id)


def test_the_child_logs_into_the_run_gitml_started(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, {"MLproject": MLPROJECT, "train.py": TRAIN})
    hostile = "a; touch pwned $(touch pwned2) `touch pwned3`\nx"
    code, out, err = run_cli(
        capsys, "run", ".", "-P", "alpha=0.25", "-P", f"msg={hostile}", "-P", "lr=0.1"
    )
    assert code == 0, err
    run = last_run(repo, out)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["score"] == 0.5
    assert (
        run.data.params["alpha"] == "0.25"
        and run.data.params["msg"] == shlex.quote(hostile)  # as mlflow run logs it
        and run.data.params["lr"] == "0.1"
    )
    assert json.loads(run.data.params["argv"].replace("'", '"').replace("\n", "\\n")) == [
        "--alpha",
        "0.25",
        "--msg",
        hostile,
        "--lr",
        "0.1",
    ]
    assert not list(repo.glob("pwned*"))
    tags = run.data.tags
    assert tags["mlflow.project.entryPoint"] == "main" and tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.source.git.commit"] == git("rev-parse", "HEAD", cwd=repo).strip()
    assert tags["gitml.provenance.dirty"] == "false"
    assert "Running command" in err


def test_a_failing_child_fails_the_run(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(repo, {"MLproject": MLPROJECT, "train.py": TRAIN})
    code, out, _ = run_cli(capsys, "run", "-P", "msg=fail")
    assert code == 1
    assert last_run(repo, out).info.status == "FAILED"


def test_timeout_kills_the_child_and_marks_the_run_killed(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, {"MLproject": MLPROJECT, "train.py": TRAIN})
    code, out, _ = run_cli(capsys, "run", "-e", "sleepy", "--timeout", "1")
    assert code == 124
    assert last_run(repo, out).info.status == "KILLED"


def test_a_script_runs_without_an_mlproject(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(repo, {"train.py": TRAIN})
    code, out, err = run_cli(capsys, "run", "-e", "train.py", "-P", "alpha=0.5")
    assert code == 0, err
    assert last_run(repo, out).data.metrics["score"] == 1.0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["-P", "alpha=x"], "parameter 'alpha' is a float"),
        (["-P", "alpha=2"], "must be <= 1"),
        (["-P", "alhpa=0.1"], "did you mean 'alpha'"),
        (["-e", "mian"], "did you mean 'main'"),
        (["-e", "nope.py"], "nope.py not found"),
        (["--env-manager", "conda"], "conda"),
        (["-P", "novalue"], "NAME=VALUE"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str], args: list[str], match: str
) -> None:
    project(repo, {"MLproject": MLPROJECT, "train.py": TRAIN})
    code, out, err = run_cli(capsys, "run", *args)
    assert code != 0 and match in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert branch_tip(repo) == ""


def test_a_broken_project_file_is_refused_with_its_place(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, {"MLproject": "entry_points:\n  main:\n    comand: python x.py\n"})
    code, _, err = run_cli(capsys, "run")
    assert (
        code == 1
        and "MLproject:3:5: unknown key 'comand'" in err
        and "did you mean 'command'" in err
    )
    code, _, err = run_cli(capsys, "run", "--lenient")
    assert code == 1 and "needs a command" in err
    assert branch_tip(repo) == ""


def test_dirty_code_is_recorded_with_its_patch(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, {"MLproject": MLPROJECT, "train.py": TRAIN})
    (repo / "train.py").write_text(TRAIN.replace("args.alpha * 2", "args.alpha * 3"))
    (repo / "notes.txt").write_text("untracked\n")
    code, out, err = run_cli(capsys, "run")
    assert code == 0, err
    run = last_run(repo, out)
    tags = run.data.tags
    assert tags["gitml.provenance.dirty"] == "true" and tags["gitml.provenance.untracked"] == "1"
    client = GitMLClient(repo)
    patch = Path(client.download_artifacts(run.info.run_id, "gitml/diff.patch")).read_text()
    assert "args.alpha * 3" in patch
    import hashlib

    assert hashlib.sha256(patch.encode()).hexdigest() == tags["gitml.provenance.diff_sha256"]
    prov = json.loads(
        Path(client.download_artifacts(run.info.run_id, "gitml/provenance.json")).read_text()
    )
    assert prov["code"]["untracked"] == ["notes.txt"] and prov["run"]["entry_point"] == "main"
    assert prov["env"]["python"] == ".".join(map(str, sys.version_info[:3]))


def test_runs_show_displays_the_provenance(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(repo, {"MLproject": MLPROJECT, "train.py": TRAIN})
    (repo / "train.py").write_text(TRAIN + "# edited\n")
    code, out, _ = run_cli(capsys, "run")
    run_id = out.split()[-2]
    code, out, _ = run_cli(capsys, "runs", "show", run_id)
    assert (
        code == 0 and "gitml.provenance.packages_sha256" in out and "gitml.provenance.python" in out
    )
    fields = dict(line.split(":", 1) for line in out.splitlines() if line[:1].isupper() and ":" in line)
    assert fields["Dirty"].strip() == "true" and fields["Diff"].strip().startswith("sha256 ")
    assert fields["Commit"].strip() == git("rev-parse", "HEAD", cwd=repo).strip()
    assert fields["Python"].strip().startswith(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert fields["Data"].strip().startswith("0 file(s)")


def test_a_project_from_a_git_url_at_a_version(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git("init", "-q", "-b", "main", cwd=upstream)
    project(upstream, {"sub/MLproject": MLPROJECT, "sub/train.py": TRAIN})
    first = git("rev-parse", "HEAD", cwd=upstream).strip()
    project(upstream, {"sub/train.py": TRAIN.replace("args.alpha * 2", "args.alpha * 4")})
    url = (upstream).as_uri() + "#sub"
    code, out, err = run_cli(capsys, "run", url, "--version", first[:10], "-P", "alpha=0.5")
    assert code == 0, err
    run = last_run(repo, out)  # the run lands in the working directory's repository
    assert run.data.metrics["score"] == 1.0
    assert run.data.tags["mlflow.source.name"] == url
    assert run.data.tags["mlflow.source.git.commit"] == first
    code, out, err = run_cli(capsys, "run", url, "-P", "alpha=0.5")
    assert code == 0 and last_run(repo, out).data.metrics["score"] == 2.0
    for bad, match in (
        ((url, "--version", "nope"), "revision nope not found"),
        ((upstream.as_uri() + "#../x",), "relative path inside"),
    ):
        code, _, err = run_cli(capsys, "run", *bad)
        assert code == 1 and match in err


def test_gitml_diff_marks_a_dirty_run(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(repo, {"MLproject": MLPROJECT, "train.py": TRAIN})
    code, out, _ = run_cli(capsys, "run")
    clean = out.split()[-2]
    (repo / "train.py").write_text(TRAIN + "\n# edited\n")
    code, out, _ = run_cli(capsys, "run", "-P", "alpha=0.25")
    dirty = out.split()[-2]
    code, out, err = run_cli(capsys, "diff", clean, dirty)
    assert code == 0, err
    a_line, b_line = out.splitlines()[:2]
    assert a_line.startswith(f"A: run {clean}") and "dirty" not in a_line
    assert b_line.startswith(f"B: run {dirty}") and b_line.endswith(", dirty))")


def test_the_python_api_is_mlflows_projects_run(repo: Path) -> None:
    import gitml

    project(repo, {"MLproject": MLPROJECT, "train.py": TRAIN})
    submitted = gitml.projects.run(str(repo), entry_point="main", parameters={"alpha": 0.5})
    assert submitted.wait() and submitted.get_status() == "FINISHED"
    assert GitMLClient(repo).get_run(submitted.run_id).data.metrics["score"] == 1.0
    again = gitml.run(str(repo), entry_point="main", parameters={"alpha": 0.5})  # mlflow.run
    assert again.get_status() == "FINISHED" and again.run_id != submitted.run_id

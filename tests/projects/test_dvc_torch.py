"""A PyTorch project reading a DVC-tracked dataset: provenance from DVC's pointers, reproduce pulls."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gitml.tracking.client import GitMLClient
from tests.conftest import git, run_cli
from tests.projects.test_run import branch_tip, project

pytest.importorskip("torch", reason="PyTorch is needed for the training project")
pytest.importorskip("dvc", reason="DVC is needed for the DVC-tracked dataset")

TRAIN = """\
import argparse
import torch
import gitml as mlflow
ap = argparse.ArgumentParser()
ap.add_argument("--data")
ap.add_argument("--epochs", type=int)
args = ap.parse_args()
rows = [list(map(float, line.split(","))) for line in open(args.data + "/points.csv")]
t = torch.tensor(rows)
x, y = t[:, :2], t[:, 2:]
torch.manual_seed(0)
model = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(args.epochs):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    mlflow.log_metric("loss", loss.item(), step=epoch)
"""

MLPROJECT = """\
name: torch-dvc
entry_points:
  main:
    parameters:
      data: {type: path, default: data}
      epochs: {type: int, default: 5, min: 1}
    command: "python train.py --data {data} --epochs {epochs}"
"""


def dvc(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def torch_project(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    remote = tmp_path / "dvc-remote"
    dvc("init", "-q", cwd=repo)
    dvc("remote", "add", "-d", "store", str(remote), cwd=repo)
    (repo / "data").mkdir()
    (repo / "data" / "points.csv").write_text(
        "".join(f"{i},{i % 3},{2 * i + 1}\n" for i in range(20))
    )
    dvc("add", "-q", "data", cwd=repo)
    dvc("push", "-q", cwd=repo)
    project(repo, {"MLproject": MLPROJECT, "train.py": TRAIN})
    return repo, remote


def test_data_hashes_come_from_dvc_and_reproduce_pulls_them(
    torch_project: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = torch_project
    code, out, err = run_cli(capsys, "run", "-P", "epochs=4")
    assert code == 0, err
    run_id = out.split()[-2]
    client = GitMLClient(repo)
    prov = json.loads(Path(client.download_artifacts(run_id, "gitml/provenance.json")).read_text())
    md5 = next(
        line.split(":")[1].strip()
        for line in (repo / "data.dvc").read_text().splitlines()
        if "md5:" in line
    )
    assert prov["data"] == {"data": md5}
    assert client.get_run(run_id).data.tags["gitml.provenance.data_files"] == "1"
    # the data leaves this clone (working copy and cache); reproduce fetches it from the remote
    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache")
    code, out, err = run_cli(capsys, "reproduce", run_id)
    assert code == 0, err
    assert "data: same" in out and "within tolerance" in out
    new = client.search_runs(["0"], filter_string=f"tags.`gitml.reproduces` = '{run_id}'")[0]
    assert [m.value for m in client.get_metric_history(new.info.run_id, "loss")] == [
        m.value for m in client.get_metric_history(run_id, "loss")
    ]


def test_data_missing_from_the_remote_is_one_line(
    torch_project: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, remote = torch_project
    code, out, err = run_cli(capsys, "run")
    assert code == 0, err
    run_id = out.split()[-2]
    shutil.rmtree(remote)
    shutil.rmtree(repo / ".dvc" / "cache")
    tip = branch_tip(repo)
    code, _, err = run_cli(capsys, "reproduce", run_id)
    assert code == 1 and "could not be fetched from the DVC remote" in err
    assert len(err.strip().splitlines()) == 1
    assert branch_tip(repo) == tip
    assert len(git("worktree", "list", cwd=repo).splitlines()) == 1

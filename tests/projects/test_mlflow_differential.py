"""The same project under real `mlflow run --env-manager local` and `gitml run`: same command, same params."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from gitml.tracking.client import GitMLClient
from tests.conftest import run_cli
from tests.projects.test_run import project

# MLflow's own venv, at the Makefile's pin: `make mlflow-venv` builds it (`make test` does).
MLFLOW_VENV = Path(__file__).resolve().parents[2] / ".venv-mlflow"
MLFLOW = MLFLOW_VENV / "bin" / "mlflow"

pytestmark = pytest.mark.skipif(
    not MLFLOW.exists(), reason=f"MLflow is not installed in {MLFLOW_VENV.name} (make mlflow-venv builds it)"
)

MLPROJECT = """\
name: differential
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.1}
      n: {type: int, default: 3}
      data: {type: path, default: data.csv}
      name: {type: string, default: "a b"}
    command: "python show.py --alpha {alpha} -n {n} --data {data} --name {name}"
"""

SHOW = """\
import json, os, sys
with open(os.environ["ARGV_OUT"], "w") as f:
    json.dump(sys.argv[1:], f)
"""


def mlflow_params(store: Path) -> dict[str, str]:
    runs = [p for p in store.glob("*/*/params") if p.is_dir()]
    assert len(runs) == 1
    return {f.name: f.read_text() for f in runs[0].iterdir()}


@pytest.mark.parametrize(
    "params",
    [
        [],
        ["alpha=0.25", "n=7"],
        ["name=x; rm -rf ~", "extra=$(id)", "lr=1e-3"],
    ],
)
def test_same_command_and_params_as_mlflow_run(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], params: list[str]
) -> None:
    project(repo, {"MLproject": MLPROJECT, "show.py": SHOW, "data.csv": "1\n"})
    args = [a for p in params for a in ("-P", p)]
    store = tmp_path / "mlruns"
    env = {
        **os.environ,
        "PATH": f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_TRACKING_URI": store.as_uri(),
        "ARGV_OUT": str(tmp_path / "mlflow.json"),
    }
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(MLFLOW), "run", ".", "--env-manager", "local", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    os.environ["ARGV_OUT"] = str(tmp_path / "gitml.json")
    try:
        code, out, err = run_cli(capsys, "run", ".", *args)
    finally:
        del os.environ["ARGV_OUT"]
    assert code == 0, err
    assert json.loads((tmp_path / "gitml.json").read_text()) == json.loads(
        (tmp_path / "mlflow.json").read_text()
    )
    run = GitMLClient(repo).get_run(out.split()[-2])
    assert run.data.params == mlflow_params(store)

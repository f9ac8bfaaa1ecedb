"""`gitml deploy argo|kubeflow`: the seed's four-step DAG, checked by Hera and KFP's own schema."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from gitml.deploy.pipelines import argo_workflow, check_workflow, kubeflow_pipeline
from gitml.exceptions import InvalidParameterValue
from gitml.projects.spec import load_project
from tests.conftest import run_cli

SEED = """\
name: image-classifier
python_env: python_env.yaml
entry_points:
  prepare_data:
    parameters:
      out: {type: string, default: data/prepared}
    command: "python prepare.py --out {out}"
  train:
    depends_on: [prepare_data]
    resources: {gpu: 1, cpu: 4, memory: 8Gi}
    parameters:
      epochs: {type: int, default: 3}
      lr: {type: float, default: 0.001}
    command: "python train.py --epochs {epochs} --lr {lr}"
  evaluate:
    depends_on: [train]
    command: "python evaluate.py"
  deploy:
    depends_on: [evaluate]
    command: "python deploy.py"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "MLproject").write_text(SEED)
    (root / "python_env.yaml").write_text('python: "3.11"\n')
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "seed"], cwd=root, check=True)
    return root


def test_argo_dag_round_trips_through_hera(project: Path) -> None:
    hera = pytest.importorskip("hera.workflows", reason="hera is not installed")
    wf = argo_workflow(load_project(project), "deploy", "ic:1", {"epochs": "5"})
    check_workflow(wf)
    assert hera.Workflow.from_dict(wf).to_dict() == wf  # nothing Hera's models do not know
    tasks = {t["name"]: t for t in wf["spec"]["templates"][0]["dag"]["tasks"]}
    assert list(tasks) == ["prepare-data", "train", "evaluate", "deploy"]
    assert tasks["evaluate"]["dependencies"] == ["train"]
    train = next(t for t in wf["spec"]["templates"] if t["name"] == "step-train")
    assert train["container"]["args"] == ["run", ".", "-e", "train", "--cache", "-P", "epochs=5", "-P", "lr=0.001"]
    assert train["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert train["memoize"]["key"].startswith("gitml-")


def test_memo_keys_change_with_code_and_params(project: Path) -> None:
    p = load_project(project)
    key = lambda wf, step: next(t for t in wf["spec"]["templates"] if t["name"] == step)["memoize"]["key"]  # noqa: E731
    a = argo_workflow(p, "deploy", "ic:1")
    b = argo_workflow(p, "deploy", "ic:1", {"epochs": "9"})
    assert key(a, "step-prepare-data") == key(b, "step-prepare-data")
    assert key(a, "step-train") != key(b, "step-train")
    (project / "train.py").write_text("print(1)\n")
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", "commit", "-qm", "code"], cwd=project, check=True)
    c = argo_workflow(load_project(project), "deploy", "ic:1")
    assert key(a, "step-train") != key(c, "step-train")


def test_kubeflow_ir_parses_strictly(project: Path) -> None:
    pytest.importorskip("kfp.pipeline_spec.pipeline_spec_pb2", reason="kfp-pipeline-spec is not installed")
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    ir = kubeflow_pipeline(load_project(project), "deploy", "ic:1")
    spec = json_format.ParseDict(ir, pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False)
    deploy = json_format.ParseDict(
        ir["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig(), ignore_unknown_fields=False
    )
    assert list(spec.root.dag.tasks["deploy"].dependent_tasks) == ["evaluate"]
    train = deploy.executors["exec-train"].container
    assert train.resources.accelerator.resource_type == "nvidia.com/gpu"
    assert train.resources.accelerator.resource_count == "1"
    for task in spec.root.dag.tasks.values():
        assert task.component_ref.name in spec.components


def test_cycles_and_missing_params_are_refused(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "MLproject").write_text(SEED.replace("depends_on: [prepare_data]", "depends_on: [deploy]"))
    code, _, err = run_cli(capsys, "deploy", "argo", str(project), "-e", "deploy", "--image", "ic:1")
    assert code == 1 and "cycle" in err and err.count("\n") == 1
    (project / "MLproject").write_text(SEED.replace("{type: int, default: 3}", "{type: int}"))
    with pytest.raises(InvalidParameterValue, match="epochs"):
        argo_workflow(load_project(project), "deploy", "ic:1")
    with pytest.raises(InvalidParameterValue):
        argo_workflow(load_project(project), "deploy", "ic:1", {"epochs": "0.5"})


def test_cli_writes_yaml(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "wf.yaml"
    code, _, err = run_cli(capsys, "deploy", "argo", str(project), "-e", "deploy", "--image", "ic:1", "-o", str(out))
    assert code == 0, err
    assert yaml.safe_load(out.read_text())["kind"] == "Workflow"
    code, stdout, err = run_cli(capsys, "deploy", "kubeflow", str(project), "-e", "train", "--image", "ic:1")
    assert code == 0, err
    assert set(yaml.safe_load(stdout)["root"]["dag"]["tasks"]) == {"prepare-data", "train"}

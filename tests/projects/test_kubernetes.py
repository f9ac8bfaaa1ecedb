"""The kubernetes backend writes Jobs that kubernetes-validate --strict accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitml.exceptions import InvalidParameterValue
from gitml.projects.kubernetes import k8s_name, validate_manifests
from tests.conftest import run_cli
from tests.projects.test_run import branch_tip, project

pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is needed to validate Jobs")

PIPELINE = """\
name: Fraud Detector_v2
docker_env:
  image: registry.example/fraud:1.0
entry_points:
  prepare:
    command: "python prep.py"
  train:
    depends_on: [prepare]
    parameters:
      lr: {type: float, default: 0.1}
    resources: {gpu: 2, cpu: 4, memory: 8Gi}
    command: "python train.py --lr {lr}"
"""


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("Fraud Detector_v2-train", "fraud-detector-v2-train"),
        ("9lives", "j9lives"),
        ("---", "gitml"),
        ("a" * 80, "a" * 54),
    ],
)
def test_names_are_made_valid(text: str, valid: str) -> None:
    name = k8s_name(text, "" if len(text) < 80 else "12345678")
    assert name.startswith(valid) and len(name) <= 63


def test_one_valid_job_per_step(
    repo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project(repo, {"MLproject": PIPELINE})
    cfg = tmp_path / "k8s.yaml"
    cfg.write_text("namespace: ml\nttlSecondsAfterFinished: 600\n")
    out = tmp_path / "jobs.yaml"
    code, stdout, err = run_cli(
        capsys,
        "run",
        "-e",
        "train",
        "-P",
        "lr=0.01",
        "--backend",
        "kubernetes",
        "--backend-config",
        str(cfg),
        "--manifest",
        str(out),
    )
    assert code == 0, err
    jobs = list(yaml.safe_load_all(out.read_text()))
    assert [j["metadata"]["labels"]["gitml.dev/entry-point"] for j in jobs] == ["prepare", "train"]
    train = jobs[1]
    assert train["metadata"]["name"].startswith("fraud-detector-v2-train-")
    assert (
        train["metadata"]["namespace"] == "ml" and train["spec"]["ttlSecondsAfterFinished"] == 600
    )
    assert train["spec"]["backoffLimit"] == 0
    c = train["spec"]["template"]["spec"]["containers"][0]
    assert (
        c["command"] == ["python", "train.py", "--lr", "0.01"]
        and c["image"] == "registry.example/fraud:1.0"
    )
    assert c["resources"]["limits"] == {"nvidia.com/gpu": 2, "cpu": "4", "memory": "8Gi"}
    assert "validated with kubernetes-validate --strict" in err
    assert "not applied" in err  # no kubeconfig here
    assert branch_tip(repo) == ""


def test_an_invalid_job_is_refused() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "i", "bogus": 1}]}}},
    }
    with pytest.raises(InvalidParameterValue, match="invalid at"):
        validate_manifests([job])


def test_a_missing_image_or_bad_config_is_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project(repo, {"MLproject": "entry_points:\n  main:\n    command: python x.py\n"})
    code, _, err = run_cli(capsys, "run", "--backend", "kubernetes")
    assert code == 1 and "needs an image" in err
    cfg = tmp_path / "k8s.yaml"
    cfg.write_text("namspace: ml\n")
    code, _, err = run_cli(capsys, "run", "--backend", "kubernetes", "--backend-config", str(cfg))
    assert code == 1 and "did you mean 'namespace'" in err


def test_apply_needs_kubectl_and_a_kubeconfig(
    repo: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    project(repo, {"MLproject": PIPELINE})
    if shutil.which("kubectl"):
        code, _, err = run_cli(capsys, "run", "-e", "prepare", "--backend", "kubernetes", "--apply")
        assert code == 1 and "no current context: configure a kubeconfig" in err
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, _, err = run_cli(capsys, "run", "-e", "prepare", "--backend", "kubernetes", "--apply")
    assert code == 1 and "kubectl is not installed" in err
    code, _, err = run_cli(capsys, "run", "-e", "prepare", "--backend", "kubernetes")
    assert code == 0 and "kubectl not found: manifest written, not applied" in err

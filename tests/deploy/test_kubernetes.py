"""`gitml deploy k8s`: manifests pinned to the resolved version, valid for Kubernetes itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gitml.deploy.kubernetes import K8sOptions, kserve_manifests, manifests
from gitml.deploy.target import resolve_target
from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.registry.access import open_registry
from tests.conftest import run_cli

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
K8S = "1.33.0"


def _validate(doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S, strict=True)


def test_stage_resolves_to_a_pinned_version(promoted: tuple[Path, list[str]]) -> None:
    repo, runs = promoted
    target = resolve_target("models:/team/fraud/Production", open_registry(str(repo)))
    assert (target.version, target.model_uri, target.run_id) == (1, "models:/team/fraud/1", runs[0])
    assert target.source == f"runs:/{runs[0]}/model"
    assert target.git_tag == "team/fraud@v1.0.0"


def test_manifests_are_valid_and_hardened(promoted: tuple[Path, list[str]]) -> None:
    repo, _ = promoted
    target = resolve_target("models:/team/fraud/Production", open_registry(str(repo)))
    docs = manifests(target, K8sOptions(replicas=3, gpu=1, namespace="ml"))
    assert [d["kind"] for d in docs] == ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    for doc in docs:
        _validate(doc)
        assert doc["metadata"]["name"] == "team-fraud"
        assert doc["metadata"]["namespace"] == "ml"
    dep = docs[0]
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == "/ping"
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    # pinned to the version, not the moving stage name
    assert pod["metadata"]["annotations"]["gitml.dev/model-uri"] == "models:/team/fraud/1"
    assert {"name": "GITML_MODEL_URI", "value": "models:/team/fraud/1"} in c["env"]
    assert c["image"] == "team-fraud:1.0.0"
    assert docs[3]["spec"] == {"minAvailable": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "team-fraud"}}}


def test_one_replica_does_not_block_drains(promoted: tuple[Path, list[str]]) -> None:
    repo, _ = promoted
    target = resolve_target("models:/team/fraud/1", open_registry(str(repo)))
    pdb = manifests(target, K8sOptions(replicas=1))[3]
    assert pdb["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize(
    ("version", "mode"), [("0.13", "RawDeployment"), ("0.14.1", "RawDeployment"), ("0.15", "Standard"), ("v0.16.0", "Standard")]
)
def test_kserve_mode_follows_the_version(promoted: tuple[Path, list[str]], version: str, mode: str) -> None:
    repo, _ = promoted
    target = resolve_target("models:/team/fraud/Production", open_registry(str(repo)))
    runtime, isvc = kserve_manifests(target, K8sOptions(kserve_version=version))
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode
    assert isvc["spec"]["predictor"]["model"]["protocolVersion"] == "v2"
    assert isvc["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    assert runtime["spec"]["protocolVersions"] == ["v2"]


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (K8sOptions(replicas=0), "--replicas"),
        (K8sOptions(gpu=-1), "--gpu"),
        (K8sOptions(gpu=1.5), "--gpu"),  # type: ignore[arg-type]
        (K8sOptions(cpu="lots"), "--cpu"),
        (K8sOptions(namespace="Bad_NS"), "--namespace"),
        (K8sOptions(image="--privileged"), "--image"),
        (K8sOptions(kserve_version="latest"), "--kserve-version"),
    ],
)
def test_options_out_of_range_are_refused(opts: K8sOptions, message: str) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        opts.check()


def test_stage_with_no_version_is_an_error(promoted: tuple[Path, list[str]]) -> None:
    repo, _ = promoted
    with pytest.raises(ResourceDoesNotExist):
        resolve_target("models:/team/fraud/Staging", open_registry(str(repo)))


def test_cli_writes_files(promoted: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "k8s"
    code, out, err = run_cli(capsys, "deploy", "k8s", "-m", "models:/team/fraud/Production", "-o", str(out_dir), "--replicas", "2")
    assert code == 0, err
    assert "models:/team/fraud/1" in out
    files = sorted(p.name for p in out_dir.iterdir())
    assert files == ["deployment.yaml", "horizontalpodautoscaler.yaml", "poddisruptionbudget.yaml", "service.yaml"]
    for f in out_dir.iterdir():
        _validate(yaml.safe_load(f.read_text()))
    code, out, err = run_cli(capsys, "deploy", "k8s", "-m", "models:/team/fraud/Production", "-o", str(out_dir), "--replicas", "0")
    assert code == 1 and err.startswith("Error: --replicas") and "Traceback" not in err
    code, out, err = run_cli(capsys, "deploy", "k8s", "-m", "models:/nope/Production", "-o", str(out_dir))
    assert code == 1 and err.count("\n") == 1
    code, out, err = run_cli(capsys, "deploy", "k8s", "-m", "models:/team/fraud/Production", "-o", str(out_dir), "--apply")
    assert code == 1 and ("kubectl" in err or "kubeconfig" in err)


@pytest.fixture(scope="module")
def kserve_schema() -> object:
    from tests.deploy.kserve_schema import SDK_DIR, KServeSchema

    try:
        return KServeSchema(SDK_DIR)
    except FileNotFoundError:
        pytest.skip("KServe's SDK (its generated API models) is not in .tools/kserve-sdk: `make tools` installs it")


KSERVE_TYPES = {"InferenceService": "V1beta1InferenceService", "ServingRuntime": "V1alpha1ServingRuntime"}


@pytest.mark.parametrize(
    "opts",
    [K8sOptions(), K8sOptions(gpu=2, namespace="ml", replicas=3, kserve_version="0.14"), K8sOptions(image="registry.local/fraud:1", kserve_version="0.16")],
)
def test_kserve_manifests_match_kserves_schema(promoted: tuple[Path, list[str]], kserve_schema: Any, opts: K8sOptions) -> None:
    repo, _ = promoted
    target = resolve_target("models:/team/fraud/Production", open_registry(str(repo)))
    runtime, isvc = kserve_manifests(target, opts)
    assert (runtime["apiVersion"], isvc["apiVersion"]) == ("serving.kserve.io/v1alpha1", "serving.kserve.io/v1beta1")
    for doc in (runtime, isvc):
        assert kserve_schema.errors(doc, KSERVE_TYPES[doc["kind"]]) == []
    # the check is strict: a misspelt field anywhere, a Kubernetes field included, is refused
    isvc["spec"]["predictor"]["model"]["protocolVersoin"] = "v2"
    runtime["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    del runtime["spec"]["containers"]
    assert any("protocolVersoin" in e for e in kserve_schema.errors(isvc, "V1beta1InferenceService"))
    assert any("containers" in e for e in kserve_schema.errors(runtime, "V1alpha1ServingRuntime"))
    assert any("imagePullPolicyy" in e for e in kserve_schema.errors({"spec": {"containers": [{"name": "c", "imagePullPolicyy": "x"}]}}, "V1alpha1ServingRuntime"))


def test_cli_kserve_files_match_kserves_schema(promoted: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str], kserve_schema: Any) -> None:
    out_dir = tmp_path / "kserve"
    code, out, err = run_cli(capsys, "deploy", "k8s", "--kserve", "-m", "models:/team/fraud/Production", "-o", str(out_dir))
    assert code == 0, err
    docs = [yaml.safe_load(f.read_text()) for f in sorted(out_dir.iterdir())]
    assert sorted(d["kind"] for d in docs) == ["InferenceService", "ServingRuntime"]
    for doc in docs:
        assert kserve_schema.errors(doc, KSERVE_TYPES[doc["kind"]]) == []

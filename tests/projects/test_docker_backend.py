"""`gitml run --backend docker`: the entry point runs in the docker_env image on a real engine."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from gitml.client import GitMLClient
from tests.conftest import run_cli
from tests.deploy.conftest import BASE_IMAGE
from tests.projects.test_run import branch_tip, project

# gitml is not installed in the image: the script leaves what it saw in files of the project.
TRAIN = """\
import os, sys
alpha = float(sys.argv[sys.argv.index("--alpha") + 1])
os.makedirs("out", exist_ok=True)
with open("out/seen.txt", "w") as f:
    f.write("\\n".join([
        os.environ.get("MLFLOW_RUN_ID", ""),
        os.environ.get("MLFLOW_TRACKING_URI", ""),
        os.environ.get("GREETING", ""),
        os.environ.get("HOST_ONLY", "absent"),
        open("/data/x.txt").read().strip(),
        os.getcwd(),
        str(alpha * 2),
    ]))
sys.exit(3 if alpha > 0.9 else 0)
"""


def mlproject(image: str = BASE_IMAGE, volumes: str = '["data:/data:ro"]') -> str:
    return f"""\
name: boxed
docker_env:
  image: "{image}"
  volumes: {volumes}
  environment: [["GREETING", "hi"]]
entry_points:
  main:
    parameters:
      alpha: {{type: float, default: 0.5}}
    command: "python3 train.py --alpha {{alpha}}"
  sleepy:
    command: "python3 -c 'import time; time.sleep(120)'"
"""


def _files(**kw: Any) -> dict[str, str]:
    return {"MLproject": mlproject(**kw), "train.py": TRAIN, "data/x.txt": "data-in-volume\n"}


@pytest.fixture
def engine(docker_engine: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DOCKER_HOST", docker_engine.env["DOCKER_HOST"])
    monkeypatch.setenv("HOST_ONLY", "must-not-leak")
    return docker_engine


def test_the_entry_point_runs_in_the_image_and_the_digest_is_recorded(
    repo: Path, engine: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, _files())
    code, out, err = run_cli(capsys, "run", ".", "--backend", "docker", "-P", "alpha=0.25")
    assert code == 0, err
    run_id = out.split()[-2]
    run = GitMLClient(repo).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["alpha"] == "0.25"
    digest = engine.docker("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE).stdout.strip()
    assert digest.startswith("sha256:")
    tags = run.data.tags
    assert tags["mlflow.project.backend"] == "docker"
    assert tags["mlflow.docker.image.uri"] == BASE_IMAGE  # MLflow's tag names
    assert tags["mlflow.docker.image.id"] == digest
    assert tags["gitml.project.exit_code"] == "0"
    seen = (repo / "out" / "seen.txt").read_text().split("\n")
    assert seen == [
        run_id,
        str(repo.resolve()),
        "hi",
        "absent",  # only the run's and docker_env's variables go in
        "data-in-volume",
        str(repo.resolve()),
        "0.5",
    ]
    local = GitMLClient(repo).download_artifacts(run_id, "gitml/provenance.json", str(repo / "dl"))
    prov = json.loads(Path(local).read_text())
    assert prov["env"]["image_id"] == digest and prov["env"]["image"] == BASE_IMAGE
    assert engine.docker("ps", "-aq").stdout.strip() == ""  # --rm: nothing left behind


def test_a_failing_container_fails_the_run_with_its_exit_status(
    repo: Path, engine: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, _files())
    code, out, err = run_cli(capsys, "run", ".", "--env-manager", "docker", "-P", "alpha=0.95")
    assert code == 3, err
    run = GitMLClient(repo).get_run(out.split()[-2])
    assert run.info.status == "FAILED"
    assert run.data.tags["gitml.project.exit_code"] == "3"


def test_an_image_name_that_is_an_option_is_refused_before_anything_runs(
    repo: Path, engine: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, _files(image="--privileged"))
    code, _, err = run_cli(capsys, "run", ".", "--backend", "docker")
    assert code != 0
    assert err.startswith("Error: ") and "not a Docker image name" in err
    assert len(err.strip().splitlines()) == 1
    assert branch_tip(repo) == ""  # nothing on the metadata branch


@pytest.mark.parametrize(
    "volume",
    ['["../..:/host"]', '["/etc:/etc"]', '["data"]', '["data:relative"]', '["data:/d:rx"]'],
)
def test_a_volume_leaving_the_project_or_malformed_is_refused(
    repo: Path, volume: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, _files(volumes=volume))
    code, _, err = run_cli(capsys, "run", ".", "--backend", "docker")
    assert code != 0 and err.startswith("Error: docker_env: volume"), err
    assert branch_tip(repo) == ""


def test_docker_absent_from_path_is_one_clear_line(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project(repo, _files())
    git_dir = Path(shutil.which("git") or "/usr/bin/git").parent
    bare = repo.parent / "bin-without-docker"
    bare.mkdir()
    os.symlink(shutil.which("git") or git_dir / "git", bare / "git")
    monkeypatch.setenv("PATH", str(bare))
    code, _, err = run_cli(capsys, "run", ".", "--backend", "docker")
    assert code != 0
    assert err.startswith("Error: the docker backend needs the docker client"), err
    assert branch_tip(repo) == ""


def test_an_engine_that_does_not_answer_is_one_clear_line(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client (scripts/sysdeps.sh installs docker.io)")
    project(repo, _files())
    monkeypatch.setenv("DOCKER_HOST", f"unix://{repo.parent / 'no-such.sock'}")
    code, _, err = run_cli(capsys, "run", ".", "--backend", "docker")
    assert code != 0
    assert err.startswith("Error: the Docker engine does not answer"), err
    assert branch_tip(repo) == ""


def test_the_docker_backend_needs_a_docker_env(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, {"MLproject": "name: x\nentry_points:\n  main:\n    command: python3 -V\n"})
    code, _, err = run_cli(capsys, "run", ".", "--backend", "docker")
    assert code != 0 and "needs docker_env" in err


def test_the_timeout_stops_the_container_and_kills_the_run(
    repo: Path, engine: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, _files())
    t0 = time.monotonic()
    code, out, err = run_cli(
        capsys, "run", ".", "-e", "sleepy", "--backend", "docker", "--timeout", "3"
    )
    assert code == 124, err
    assert time.monotonic() - t0 < 60  # docker stop, not the 120 s sleep
    run = GitMLClient(repo).get_run(out.split()[-2])
    assert run.info.status == "KILLED"
    assert engine.docker("ps", "-aq").stdout.strip() == ""

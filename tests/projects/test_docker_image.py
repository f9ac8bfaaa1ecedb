"""`gitml run --backend docker`: logging from inside the container, `--build-image`, reproduce.

The image holds this checkout's gitml (tests/projects/conftest.py: `gitml_image`), so the
entry point is a plain `import gitml as mlflow` script, as users write it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitml.client import GitMLClient
from gitml.exceptions import InvalidParameterValue
from gitml.projects.docker import DockerEnv, container_argv
from gitml.projects.docker_image import content_hash, project_files, repository_name
from gitml.projects.runner import RECORD_TAG
from tests.conftest import git, run_cli
from tests.projects.test_run import branch_tip, project

TRAIN = """\
import os, sys
import gitml as mlflow

alpha = float(sys.argv[sys.argv.index("--alpha") + 1])
with mlflow.start_run():
    mlflow.log_param("cwd", os.getcwd())
    mlflow.log_param("ignored_file_seen", os.path.exists("big.bin"))
    mlflow.log_param("pid1", os.getpid() == 1)
    for step in range(3):
        mlflow.log_metric("loss", alpha / (step + 1), step=step)
    mlflow.log_metric("score", alpha * 2)
    mlflow.log_text("written in the container", "notes/hello.txt")
"""


def mlproject(image: str) -> str:
    return f"""\
name: Boxed Project
docker_env:
  image: "{image}"
entry_points:
  main:
    parameters:
      alpha: {{type: float, default: 0.5}}
    command: "python3 train.py --alpha {{alpha}}"
"""


def _files(image: str) -> dict[str, str]:
    return {"MLproject": mlproject(image), "train.py": TRAIN, ".gitignore": "big.bin\n"}


@pytest.fixture
def engine(docker_engine: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DOCKER_HOST", docker_engine.env["DOCKER_HOST"])
    return docker_engine


def _run_id(out: str) -> str:
    return out.split()[-2]


def test_a_plain_mlflow_script_logs_into_the_run_from_inside_the_container(
    repo: Path, engine: Any, gitml_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, _files(gitml_image))
    # the user's global Git config names the metadata branch (and who they are); the
    # container cannot read it, so the backend passes what the child must share
    with open(Path(os.environ["HOME"]) / ".gitconfig", "a") as f:
        f.write("[gitml]\n\tbranch = ml-runs\n")
    code, out, err = run_cli(
        capsys, "run", ".", "--backend", "docker", "-P", "alpha=0.3", "-A", "init"
    )
    assert code == 0, err
    run_id = _run_id(out)
    branches = git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=repo).split()
    assert "ml-runs" in branches and "gitml" not in branches
    committers = git("log", "--format=%cn <%ce>", "ml-runs", cwd=repo).splitlines()
    assert set(committers) == {"Test User <test@example.com>"}  # the child's commits too
    client = GitMLClient(repo)  # a fresh client reads what the container wrote on the branch
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["alpha"] == "0.3"
    assert run.data.params["cwd"] == str(repo.resolve())  # the repository at its own path
    assert run.data.params["pid1"] == "False"  # -A init: docker's init is PID 1, as asked
    assert run.data.metrics == {"loss": pytest.approx(0.1), "score": pytest.approx(0.6)}
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.3), (1, 0.15), (2, pytest.approx(0.1))]
    got = client.download_artifacts(run_id, "notes/hello.txt", str(repo.parent / "dl"))
    assert Path(got).read_text() == "written in the container"
    image_id = engine.docker("image", "inspect", "--format", "{{.Id}}", gitml_image).stdout.strip()
    assert run.data.tags["mlflow.docker.image.uri"] == gitml_image
    assert run.data.tags["mlflow.docker.image.id"] == image_id
    # what the container wrote into .git belongs to the caller (it runs as --user UID:GID)
    owners = {p.stat().st_uid for p in (repo / ".git").rglob("*")}
    assert owners == {os.getuid()}
    code, out, err = run_cli(capsys, "runs", "show", run_id)
    assert code == 0, err
    assert "loss" in out and "score" in out
    assert f"Image:       {gitml_image} ({image_id[:19]})" in out


def test_build_image_bakes_the_project_in_reuses_it_and_reproduce_finds_or_rebuilds_it(
    repo: Path, engine: Any, gitml_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, _files(gitml_image))
    (repo / "big.bin").write_bytes(b"ignored: never copied into the image")
    args = ("run", ".", "--backend", "docker", "--build-image", "-P", "alpha=0.25")
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "Building docker image boxed-project:" in err
    first = GitMLClient(repo).get_run(_run_id(out))
    tags = first.data.tags
    content = tags["gitml.docker.build_sha256"]
    tag = f"boxed-project:{content[:12]}"
    assert tags["mlflow.docker.image.uri"] == tag
    inspect = engine.docker("image", "inspect", "--format", "{{.Id}} {{json .Config.Labels}}", tag)
    image_id, labels = inspect.stdout.strip().split(" ", 1)
    assert tags["mlflow.docker.image.id"] == image_id
    assert json.loads(labels)["org.gitml.project.content"] == content
    assert first.data.params["cwd"] == "/mlflow/projects/code"  # MLflow's place for the code
    assert first.data.params["ignored_file_seen"] == "False"
    assert first.data.metrics["score"] == pytest.approx(0.5)
    record = json.loads(tags[RECORD_TAG])
    assert record["docker"] == {"image_id": image_id, "build_image": True}
    prov = json.loads(
        Path(
            GitMLClient(repo).download_artifacts(
                first.info.run_id, "gitml/provenance.json", str(repo.parent / "p")
            )
        ).read_text()
    )
    assert prov["env"]["image_id"] == image_id and prov["env"]["build_sha256"] == content

    code, out, err = run_cli(capsys, *args)  # unchanged files: the image is reused, not built
    assert code == 0, err
    assert f"reusing project image {tag}" in err and "Building" not in err
    assert GitMLClient(repo).get_run(_run_id(out)).data.tags["mlflow.docker.image.id"] == image_id

    code, out, err = run_cli(capsys, "reproduce", first.info.run_id)
    assert code == 0, err
    assert "using the recorded image" in err
    assert "image: same" in out and "within tolerance" in out
    again = GitMLClient(repo).get_run(out.strip().splitlines()[-1].split()[3])
    assert again.data.tags["mlflow.docker.image.id"] == image_id
    assert again.data.metrics == first.data.metrics

    engine.docker("rmi", tag)  # the image is gone: reproduce builds it again at the commit
    code, out, err = run_cli(capsys, "reproduce", first.info.run_id)
    assert code == 0, err
    assert (
        "is not on this engine: building it again" in err and f"Building docker image {tag}" in err
    )
    rebuilt = GitMLClient(repo).get_run(out.strip().splitlines()[-1].split()[3])
    assert rebuilt.data.tags["gitml.docker.build_sha256"] == content
    assert rebuilt.data.metrics == first.data.metrics
    assert "image: same" in out  # the same files on the same base, though a new image id


def test_a_failing_image_build_is_one_line_and_writes_nothing(
    repo: Path, engine: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.deploy.conftest import BASE_IMAGE

    broken = tmp_path / "broken"
    broken.mkdir()
    # a base image where the code's folder is a file: COPY into it fails
    (broken / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN mkdir -p /mlflow/projects && touch /mlflow/projects/code\n"
    )
    engine.docker("build", "--quiet", "--tag", "gitml-test-broken:1", str(broken))
    project(repo, _files("gitml-test-broken:1"))
    code, _, err = run_cli(capsys, "run", ".", "--backend", "docker", "--build-image")
    assert code != 0
    errors = [ln for ln in err.splitlines() if ln.startswith("Error")]
    assert len(errors) == 1, err
    assert errors[0].startswith("Error: building the project image boxed-project:"), err
    assert "not a directory" in errors[0]
    assert engine.docker("ps", "-aq").stdout.strip() == ""  # no container of the failed step left
    assert branch_tip(repo) == ""


def test_build_image_needs_the_docker_backend(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, {"MLproject": "name: x\nentry_points:\n  main:\n    command: python3 -V\n"})
    code, _, err = run_cli(capsys, "run", ".", "--build-image")
    assert code != 0 and err.startswith("Error: --build-image is for the docker backend"), err
    code, _, err = run_cli(capsys, "run", ".", "-A", "gpus=all")
    assert code != 0 and err.startswith("Error: --docker-args is for the docker backend"), err
    assert branch_tip(repo) == ""


def test_a_recorded_image_id_that_is_an_option_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The record comes from the branch (anyone who can push writes it): the id becomes an
    argument of `docker`, so it is checked whole before anything runs."""
    project(repo, _files("gitml-test-gitml:session"))
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    client = GitMLClient(repo)
    good = "sha256:" + "a" * 64
    bad = [
        ({"image_id": "--privileged"}, "recorded image id"),
        ({"image_id": good + "\n--rm"}, "recorded image id"),
        ({"image_id": "sha256:ABC"}, "recorded image id"),
        ({"image_id": good, "image_digest": "--pull=always"}, "recorded image digest"),
        ({"image_id": good, "image_digest": "img@sha256:" + "a" * 63}, "recorded image digest"),
        ({"image_id": good, "image_digest": "img:1"}, "recorded image digest"),
    ]
    for docker, message in bad:
        record = {
            "entry_point": "main",
            "given": {},
            "env_manager": "docker",
            "project_dir": ".",
            "docker": {"build_image": False, **docker},
        }
        run = client.create_run(
            "0",
            tags={
                "gitml.project.cache_key": "0" * 64,
                "mlflow.source.git.commit": head,
                RECORD_TAG: json.dumps(record),
            },
        )
        client.set_terminated(run.info.run_id, "FINISHED")
        client.flush()
        code, _, err = run_cli(capsys, "reproduce", run.info.run_id)
        assert code != 0
        assert message in err and err.startswith("Error: "), err


def test_the_content_hash_covers_the_files_git_sees_and_only_those(repo: Path) -> None:
    project(repo, {"MLproject": "name: x\n", "train.py": "print(1)\n", ".gitignore": "out/\n"})
    (repo / "out").mkdir()
    (repo / "out" / "model.bin").write_bytes(b"ignored")
    (repo / "notes.txt").write_text("untracked, not ignored\n")
    files = project_files(repo)
    assert files == [".gitignore", "MLproject", "notes.txt", "train.py"]
    before = content_hash("sha256:" + "1" * 64, repo, files)
    assert content_hash("sha256:" + "2" * 64, repo, files) != before  # another base image
    (repo / "out" / "model.bin").write_bytes(b"changed, still ignored")
    assert content_hash("sha256:" + "1" * 64, repo, project_files(repo)) == before
    (repo / "train.py").chmod(0o755)
    assert content_hash("sha256:" + "1" * 64, repo, project_files(repo)) != before
    assert repository_name("Boxed Project!") == "boxed-project"
    assert repository_name("--x") == "x" and repository_name("") == "gitml-project"


@pytest.mark.skipif(
    shutil.which("docker") is None,
    reason="no docker client (scripts/sysdeps.sh installs docker.io)",
)
def test_resources_gpu_becomes_gpus_and_a_bad_count_is_refused() -> None:
    denv = DockerEnv("gitml-test-gitml:session")
    ref = "sha256:" + "a" * 64
    for gpus, want in ((2, "2"), ("all", "all")):
        argv = container_argv(denv, "c", [], "/w", [], ["python3", "t.py"], gpus, ref)
        i = argv.index("--gpus")
        assert (
            argv[i + 1] == want and argv.index(ref) > i
        )  # an option of docker, not of the command
    assert "--gpus" not in container_argv(denv, "c", [], "/w", [], ["python3"], 0, ref)
    with pytest.raises(InvalidParameterValue, match="not a count"):
        container_argv(denv, "c", [], "/w", [], ["python3"], "1 --privileged", ref)


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is None or shutil.which("nvidia-container-cli") is None,
    reason="no GPU here: --gpus needs nvidia-smi and the NVIDIA container toolkit (nvidia-container-cli)",
)
def test_a_gpu_step_sees_a_gpu_in_the_container(
    repo: Path, engine: Any, gitml_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project(
        repo,
        {
            "MLproject": f'name: g\ndocker_env: {{image: "{gitml_image}"}}\nentry_points:\n'
            "  main:\n    resources: {gpu: 1}\n"
            '    command: "python3 -c \'import os, sys; sys.exit(0 if os.path.exists(\\"/dev/nvidia0\\") else 5)\'"\n'
        },
    )
    code, _, err = run_cli(capsys, "run", ".", "--backend", "docker")
    assert code == 0, err


@pytest.mark.parametrize(
    "image",
    ["--privileged", "-v/:/h", "ubuntu\n", "ubuntu\nRUN id", "a b", "ubuntu:latest --rm", "", 7],
)
def test_an_image_name_that_is_not_a_docker_reference_is_refused(
    image: object, tmp_path: Path
) -> None:
    """The name reaches `docker run` and a Dockerfile's FROM: a trailing newline is refused too."""
    from gitml.projects.docker import docker_env

    with pytest.raises(InvalidParameterValue, match="not a Docker image name"):
        docker_env({"image": image}, tmp_path)
    assert (
        docker_env({"image": "registry:5000/team/img:1.2"}, tmp_path).image
        == "registry:5000/team/img:1.2"
    )


def test_run_params_never_become_docker_options(tmp_path: Path) -> None:
    from gitml.projects.docker import docker_env

    with pytest.raises(InvalidParameterValue, match="run_params is not passed to docker"):
        docker_env({"image": "img:1", "run_params": {"privileged": True}}, tmp_path)


def test_reproduce_of_a_run_in_a_docker_env_image_that_moved_runs_the_name_and_says_so(
    repo: Path, engine: Any, gitml_image: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without --build-image the run's image is the docker_env image itself; when its id is
    gone, reproduce runs what the name points at now and the table marks the image DIFFERENT.
    The reproduction runs from a worktree outside the repository, mounted as well."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()

    def build(label: str) -> str:
        (ctx / "Dockerfile").write_text(f"FROM {gitml_image}\nLABEL gitml.test={label}\n")
        engine.docker("build", "--quiet", "--tag", "gitml-test-moved:1", str(ctx))
        out = engine.docker("image", "inspect", "--format", "{{.Id}}", "gitml-test-moved:1")
        return out.stdout.strip()

    old = build("old")
    project(repo, _files("gitml-test-moved:1"))
    code, out, err = run_cli(capsys, "run", ".", "--backend", "docker", "-P", "alpha=0.5")
    assert code == 0, err
    first = GitMLClient(repo).get_run(_run_id(out))
    assert first.data.tags["mlflow.docker.image.id"] == old
    new = build("new")
    engine.docker("rmi", old)
    code, out, err = run_cli(capsys, "reproduce", first.info.run_id)
    assert code == 0, err
    assert "is not on this engine: using gitml-test-moved:1" in err
    assert "image: DIFFERENT" in out and "within tolerance" in out
    again = GitMLClient(repo).get_run(out.strip().splitlines()[-1].split()[3])
    assert again.data.tags["mlflow.docker.image.id"] == new
    assert again.data.metrics == first.data.metrics
    assert again.data.params["cwd"] != first.data.params["cwd"]  # the worktree, not the repo


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A real image registry (Docker's distribution, Debian's docker-registry) on loopback."""
    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.skip("no image registry: scripts/sysdeps.sh installs docker-registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'registry'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    proc = subprocess.Popen(
        [exe, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("docker-registry did not start") from None
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_reproduce_pulls_a_registry_image_by_its_recorded_digest_when_the_tag_moved(
    repo: Path, engine: Any, registry: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tini = shutil.which("docker-init")
    if tini is None:
        pytest.skip("no static tini (docker-init, installed with docker.io) for a tiny image")
    name = f"{registry}/gitml-test-tiny:1"
    ctx = tmp_path / "tiny"
    ctx.mkdir()
    shutil.copy(os.path.realpath(tini), ctx / "tini")

    def push(label: str) -> str:
        (ctx / "Dockerfile").write_text(
            f"FROM scratch\nCOPY tini /tini\nLABEL gitml.test={label}\n"
        )
        engine.docker("build", "--quiet", "--tag", name, str(ctx))
        engine.docker("push", "--quiet", name)
        return engine.docker("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()

    first_id = push("first")
    project(
        repo,
        {
            "MLproject": f'name: tiny\ndocker_env: {{image: "{name}"}}\nentry_points:\n  main:\n    command: "/tini --version"\n'
        },
    )
    code, out, err = run_cli(capsys, "run", ".", "--backend", "docker")
    assert code == 0, err
    run = GitMLClient(repo).get_run(_run_id(out))
    digest = json.loads(run.data.tags[RECORD_TAG])["docker"]["image_digest"]
    assert digest.startswith(f"{registry}/gitml-test-tiny@sha256:")
    engine.docker("rmi", name)  # gone from this engine, and the tag now names another image
    push("second")
    engine.docker("rmi", name)
    code, out, err = run_cli(capsys, "reproduce", run.info.run_id)
    assert code == 0, err
    assert f"pulled the recorded image by its digest {digest}" in err
    assert "image: same" in out
    again = GitMLClient(repo).get_run(out.strip().splitlines()[-1].split()[3])
    assert again.data.tags["mlflow.docker.image.id"] == first_id


def test_docker_args_are_mlflows_options_and_only_option_names_pass() -> None:
    from gitml.projects.docker import docker_options

    got = docker_options({"gpus": "all", "t": True, "quiet": False, "shm-size": "64m"})
    assert got == ("--gpus", "all", "-t", "--shm-size", "64m")
    for bad in ("-privileged", "a b", "", "x=y", "1x"):
        with pytest.raises(InvalidParameterValue, match="not an option name"):
            docker_options({bad: True})

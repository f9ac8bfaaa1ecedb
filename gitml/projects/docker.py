"""The docker backend of `gitml run`: the entry point runs in the project's `docker_env` image.

MLflow's `docker_env` keys: `image`, `volumes` (`host:container[:ro|rw]`), `environment`
(`NAME` copies the host's value, `[NAME, value]` sets one). Everything read from the
MLproject is validated before it becomes an argument of `docker run`: an image name is a
Docker reference (never an option), a volume's host side stays inside the project, and
variable names are plain names. Commands are argument lists; variable values reach the
container through the docker client's environment (`-e NAME`), never its command line.

The image is reused when the engine has it, pulled otherwise; its id (`sha256:...`) is the
environment hash recorded in the run's provenance. The Git repository holding the project
is mounted at its own path (so the tracking URI the child gets means the same inside), the
project folder is the working directory, the network is the host's, and the container runs
as the calling user. Ctrl-C or the timeout stops the container (`docker stop`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist

__all__ = [
    "IMAGE_REFERENCE",
    "DockerEnv",
    "container_argv",
    "docker_env",
    "docker_options",
    "docker_program",
    "engine",
    "image_id",
    "run_container",
    "run_step",
]

# A Docker image reference: [registry[:port]/]path[:tag][@digest]; no leading '-'.
IMAGE_REFERENCE = _IMAGE = re.compile(
    r"^[a-zA-Z0-9][a-zA-Z0-9._-]*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_IDENTITY = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")
_STOP_GRACE_S = 5
_ENGINE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class DockerEnv:
    """The validated `docker_env`: image, volumes as `-v` values, variables to pass."""

    image: str
    volumes: tuple[str, ...] = ()
    variables: dict[str, str | None] = field(default_factory=dict)  # None: the host's value
    options: tuple[str, ...] = ()  # `docker run` options from the user's command line only


def docker_program() -> str:
    """The docker client on PATH, or a one-line error saying how to get it."""
    exe = shutil.which("docker")
    if exe is None:
        raise ResourceDoesNotExist(
            "the docker backend needs the docker client: install Docker (docker.io) and start its engine"
        )
    return exe


def engine(env: dict[str, str]) -> str:
    exe = docker_program()
    try:
        proc = subprocess.run(
            [exe, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=_ENGINE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as e:
        raise ResourceDoesNotExist(
            f"the Docker engine did not answer within {_ENGINE_TIMEOUT_S:.0f} s (is dockerd running? DOCKER_HOST?)"
        ) from e
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        raise ResourceDoesNotExist(f"the Docker engine does not answer: {tail}")
    return exe


def docker_options(args: dict[str, str | bool] | None) -> tuple[str, ...]:
    """MLflow's `docker_args` (`-A gpus=all`, `-A t`) as `docker run` options: `name` is
    `--name` (`-n` for one letter), a value is its own argument. These come from the
    user's command line or API call, never from the project file."""
    out: list[str] = []
    for name, value in (args or {}).items():
        if not isinstance(name, str) or not _OPTION.fullmatch(name):
            raise InvalidParameterValue(f"docker argument {name!r} is not an option name")
        flag = f"-{name}" if len(name) == 1 else f"--{name}"
        if value is True:
            out.append(flag)
        elif value is not False:
            out += [flag, str(value)]
    return tuple(out)


def docker_env(value: Any, project_root: Path) -> DockerEnv:
    """Validate MLflow's `docker_env` mapping from the MLproject into a DockerEnv."""
    if not isinstance(value, dict):
        raise InvalidParameterValue("docker_env must be a mapping with an image")
    image = value.get("image")
    if not isinstance(image, str) or not _IMAGE.fullmatch(image):
        raise InvalidParameterValue(f"docker_env: image {image!r} is not a Docker image name")
    if value.get("run_params"):
        raise InvalidParameterValue(
            "docker_env: run_params is not passed to docker: a project file does not choose "
            "docker options (use volumes, environment, and resources: {gpu: N})"
        )
    root = project_root.resolve()
    volumes: list[str] = []
    for v in value.get("volumes") or []:
        if not isinstance(v, str):
            raise InvalidParameterValue(f"docker_env: volume {v!r} is not host:container[:ro]")
        parts = v.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise InvalidParameterValue(f"docker_env: volume {v!r} is not host:container[:ro]")
        host, target = parts[0], parts[1]
        if not host or not target.startswith("/") or "," in v:
            raise InvalidParameterValue(f"docker_env: volume {v!r} is not host:container[:ro]")
        path = (root / host).resolve()
        if not path.is_relative_to(root):
            raise InvalidParameterValue(
                f"docker_env: volume {v!r} leaves the project; mount folders of the project only"
            )
        volumes.append(":".join([str(path), *parts[1:]]))
    variables: dict[str, str | None] = {}
    for item in value.get("environment") or []:
        if isinstance(item, str):
            name, val = item, None
        elif isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item):
            name, val = item[0], item[1]
        else:
            raise InvalidParameterValue(
                f"docker_env: environment item {item!r} is not NAME or [NAME, value]"
            )
        if not _ENV_NAME.match(name):
            raise InvalidParameterValue(f"docker_env: {name!r} is not a variable name")
        variables[name] = val
    return DockerEnv(image, tuple(volumes), variables)


def image_id(denv: DockerEnv, env: dict[str, str], log: Any = None) -> str:
    """The image's id (`sha256:...`), pulling it when the engine does not have it yet."""
    exe = engine(env)
    inspect = [exe, "image", "inspect", "--format", "{{.Id}}", "--", denv.image]
    proc = subprocess.run(inspect, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        pull = subprocess.run(
            [exe, "pull", "--", denv.image], capture_output=True, text=True, env=env
        )
        if pull.returncode != 0:
            tail = (pull.stderr.strip().splitlines() or ["pull failed"])[-1]
            raise ResourceDoesNotExist(
                f"docker image {denv.image} is not on this engine and cannot be pulled: {tail}"
            )
        proc = subprocess.run(inspect, capture_output=True, text=True, env=env)
    digest = proc.stdout.strip()
    if proc.returncode != 0 or not digest.startswith("sha256:"):
        raise ResourceDoesNotExist(f"docker image {denv.image}: no id from the engine")
    return digest


def container_argv(
    denv: DockerEnv,
    name: str,
    mounts: list[Path],
    workdir: Path | str,
    names: list[str],
    argv: list[str],
    gpus: Any = None,
    ref: str | None = None,
) -> list[str]:
    """`docker run ...` for one step; `names` are the variables passed by name (`-e NAME`).

    `ref` is the image to run (its id), default the docker_env image; `workdir` a host
    folder (mounted) or a folder of the image (a built image's code)."""
    cmd = [
        docker_program(),
        "run",
        "--rm",
        "--name",
        name,
        "--network",
        "host",
        "--user",
        f"{os.getuid()}:{os.getgid()}",
        "-w",
        str(workdir.resolve()) if isinstance(workdir, Path) else workdir,
    ]
    for m in dict.fromkeys(str(p.resolve()) for p in mounts):  # at their own paths
        cmd += ["-v", f"{m}:{m}"]
    for v in denv.volumes:
        cmd += ["-v", v]
    for n in names:
        cmd += ["-e", n]
    cmd += denv.options
    if gpus not in (None, 0, "0", ""):
        if not (str(gpus) == "all" or str(gpus).isdigit()):
            raise InvalidParameterValue(f"resources.gpu {gpus!r} is not a count or 'all'")
        cmd += ["--gpus", str(gpus)]
    return [*cmd, ref or denv.image, *argv]


def _stop(name: str, env: dict[str, str], proc: subprocess.Popen[Any]) -> int:
    subprocess.run(
        [docker_program(), "stop", "-t", str(_STOP_GRACE_S), name],
        capture_output=True,
        env=env,
        timeout=_STOP_GRACE_S + 60,
    )
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run_container(
    cmd: list[str],
    name: str,
    env: dict[str, str],
    timeout: float | None,
    stdout: Any,
    stderr: Any,
) -> tuple[str, int]:
    """Run `docker run` (no shell); (status, exit code). Ctrl-C / timeout: `docker stop`."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=stdout, stderr=stderr)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        code = proc.wait(timeout=wait)
        return ("FINISHED" if code == 0 else "FAILED"), code
    except subprocess.TimeoutExpired:
        return "KILLED", _stop(name, env, proc)
    except KeyboardInterrupt:
        _stop(name, env, proc)
        raise


def run_step(
    denv: DockerEnv,
    argv: list[str],
    workdir: Path | str,
    mounts: list[Path],
    env: dict[str, str],
    run_id: str,
    resources: dict[str, Any],
    timeout: float | None,
    stdout: Any,
    stderr: Any,
    ref: str | None = None,
) -> tuple[str, int]:
    """Run one step's command in the image `ref` (default the docker_env image); only the
    run's variables (`MLFLOW_*`, `GITML_*`, who commits) and docker_env's go in."""
    names = [k for k in env if k.startswith(("MLFLOW_", "GITML_")) or k in _IDENTITY]
    for name, value in denv.variables.items():
        if value is not None:
            env[name] = value
        names.append(name)
    container = f"gitml-{run_id[:12]}-{os.getpid()}"
    cmd = container_argv(
        denv,
        container,
        mounts,
        workdir,
        list(dict.fromkeys(names)),
        argv,
        resources.get("gpu"),
        ref,
    )
    return run_container(cmd, container, env, timeout, stdout, stderr)

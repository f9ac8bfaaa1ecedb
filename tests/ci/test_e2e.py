"""End to end in temporary repositories: a pull request's runs get one comment, updated on the
next push; a stage tag pushed deploys what is current, an unassignment rolls back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import gitml as mlflow
from gitml.ci.comment import MARKER
from tests.ci.fake_api import ACTIONS_TOKEN, FakeApi, serve
from tests.conftest import git, run_cli
from tests.registry._util import tag


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    with serve() as api:
        env = {"GITHUB_ACTIONS": "true", "GITHUB_API_URL": api.base, "GITHUB_REPOSITORY": "acme/shop",
               "GITHUB_TOKEN": ACTIONS_TOKEN, "GITHUB_EVENT_PATH": str(event), "GITHUB_RUN_ID": "99"}  # fmt: skip
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield api


def log(metrics: dict[str, float], params: dict[str, str] | None = None) -> None:
    with mlflow.start_run():
        mlflow.log_metrics(metrics)
        if params:
            mlflow.log_params(params)


def push_commit(repo: Path, text: str) -> None:
    (repo / "train.py").write_text(text)
    git("commit", "-q", "-am", text, cwd=repo)


def test_pull_request_gets_one_comment_updated_on_the_next_push(
    repo: Path, github: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    mlflow.set_tracking_uri(str(repo))
    log({"accuracy": 0.80})
    git("checkout", "-q", "-b", "feature", cwd=repo)
    push_commit(repo, "print('v2')\n")
    log({"accuracy": 0.85}, {"note": "<img src=x onerror=alert(1)> @everyone"})
    code, out, err = run_cli(capsys, "ci", "comment")
    assert (code, err) == (0, "") and out.rstrip().endswith("created")
    [first] = github.comments.values()
    assert (
        first["body"].startswith(MARKER)
        and "| accuracy" in first["body"]
        and "0.85" in first["body"]
    )
    assert not re.search(r"(?<!\\)<img", first["body"])  # a teammate's param is text, not HTML
    assert "\\<img" in first["body"]
    assert "https://github.com/acme/shop/actions/runs/99" in first["body"]
    assert re.search(
        r"Runs compared: \[`[0-9a-f]{12}`\]\(https://github.com/acme/shop/tree/gitml/runs/[0-9a-f]{2}/[0-9a-f]{32}\) → ",
        first["body"],
    )
    push_commit(repo, "print('v3')\n")
    log({"accuracy": 0.91})
    code, out, _ = run_cli(capsys, "ci", "comment")
    assert code == 0 and out.rstrip().endswith("updated")
    [second] = github.comments.values()
    assert "0.91" in second["body"] and "0.85" not in second["body"]
    code, out, _ = run_cli(capsys, "ci", "comment")
    assert out.rstrip().endswith("unchanged")
    assert "uncommitted changes" not in second["body"]
    (repo / "train.py").write_text("print('edited, not committed')\n")
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", 0.95)
        mlflow.set_tag("gitml.source.dirty", "true")  # what `gitml run` records from a dirty tree
    code, out, _ = run_cli(capsys, "ci", "comment")
    [third] = github.comments.values()
    assert f"run `{run.info.run_id[:12]}` ran with uncommitted changes" in third["body"]


def test_stage_tags_deploy_what_is_current_and_roll_back(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed: list[str] = []

    def pipeline(fired: str) -> None:
        """What the generated deploy job does, command by command."""
        code, out, _ = run_cli(capsys, "deployments", "plan", "--tag", fired)
        assert code == 0
        plan = dict(line.split("=", 1) for line in out.splitlines())
        if plan["deploy"] == "true":
            deployed.append(plan["model_uri"])  # the deploy command
            code, _, _ = run_cli(capsys, "deployments", "record", "--model", plan["model"],
                                 "--version", plan["version"], "--stage", "production",
                                 "--environment", "production")  # fmt: skip
            assert code == 0

    push_commit(repo, "v1")
    tag(repo, "team/cnn@v1.0.0", 1)
    push_commit(repo, "v2")
    tag(repo, "team/cnn@v2.0.0", 2)
    tag(repo, "team/cnn#production#3", 3, "team/cnn@v1.0.0^{commit}")
    pipeline("team/cnn#production#3")
    pipeline("team/cnn#production#3")  # a re-run deploys nothing new
    # two promotions in one push: both jobs resolve the newest
    tag(repo, "team/cnn#staging#4", 4, "team/cnn@v2.0.0^{commit}")
    tag(repo, "team/cnn#production#5", 5, "team/cnn@v2.0.0^{commit}")
    pipeline("team/cnn#staging#4")
    pipeline("team/cnn#production#5")
    tag(repo, "team/cnn#production!#6", 6, "team/cnn@v2.0.0^{commit}")
    pipeline("team/cnn#production!#6")
    assert deployed == ["models:/team/cnn/1", "models:/team/cnn/2", "models:/team/cnn/1"]
    code, out, _ = run_cli(capsys, "deployments", "list", "--json")
    assert [d["version"] for d in json.loads(out)] == [1, 2, 1]


def test_a_first_pull_request_gets_a_comment_saying_there_is_no_baseline(
    repo: Path, github: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    mlflow.set_tracking_uri(str(repo))
    git("checkout", "-q", "-b", "feature", cwd=repo)
    push_commit(repo, "print('v2')\n")
    log({"accuracy": 0.85})
    code, out, err = run_cli(capsys, "ci", "comment")
    assert (code, err) == (0, "")
    [comment] = github.comments.values()
    assert "No baseline run was found on `main`: nothing was compared." in comment["body"]
    assert "| accuracy | 0.85 |" in comment["body"]
    code, out, err = run_cli(capsys, "ci", "comment", "--fail-on", "accuracy<-0.01")
    assert (code, err) == (0, "")
    [comment] = github.comments.values()
    assert "➖ skipped (no baseline run on main)" in comment["body"]


def test_the_comment_shows_the_gates(
    repo: Path, github: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    mlflow.set_tracking_uri(str(repo))
    log({"accuracy": 0.80})
    git("checkout", "-q", "-b", "feature", cwd=repo)
    push_commit(repo, "print('v2')\n")
    log({"accuracy": 0.70})
    code, out, _ = run_cli(capsys, "ci", "comment", "--fail-on", "accuracy<-0.05")
    assert code == 0  # the comment reports the gates; `gitml diff --fail-on` fails the check
    [comment] = github.comments.values()
    assert "1 of 1 metric gates crossed" in comment["body"] and "crossed" in comment["body"]


def test_the_pr_number_comes_from_the_event_file_in_a_new_process(
    repo: Path, tmp_path: Path
) -> None:
    """`gitml ci comment` as a job runs it: a new process, no --pr, the number read from the
    event payload file Actions writes (GITHUB_EVENT_PATH), posted to a real HTTP API."""
    import os
    import subprocess
    import sys

    mlflow.set_tracking_uri(str(repo))
    log({"accuracy": 0.80})
    git("checkout", "-q", "-b", "feature", cwd=repo)
    push_commit(repo, "print('v2')\n")
    log({"accuracy": 0.85})
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    event = tmp_path / "event.json"  # the shape of a pull_request "synchronize" payload
    event.write_text(
        json.dumps(
            {
                "action": "synchronize",
                "number": 42,
                "before": "0" * 40,
                "after": head,
                "pull_request": {
                    "number": 42,
                    "state": "open",
                    "title": "Better model",
                    "head": {"ref": "feature", "sha": head, "repo": {"full_name": "acme/shop"}},
                    "base": {"ref": "main", "repo": {"full_name": "acme/shop"}},
                },
                "repository": {"full_name": "acme/shop", "default_branch": "main"},
                "sender": {"login": "alice", "type": "User"},
            }
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "GITML_")) and k != "CI"
    }
    with serve() as api:
        env |= {
            "GITHUB_ACTIONS": "true",
            "GITHUB_API_URL": api.base,
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_TOKEN": ACTIONS_TOKEN,
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_BASE_REF": "main",
        }
        proc = subprocess.run(
            [sys.executable, "-m", "gitml", "ci", "comment"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("GitHub comment ") and proc.stdout.rstrip().endswith(
            "created"
        )
        assert ("POST", "/repos/acme/shop/issues/42/comments") in api.calls("POST")
        [comment] = api.comments.values()
        assert "0.85" in comment["body"] and "0.8" in comment["body"]
        # A push event names no pull request: one line, exit 1, nothing posted.
        event.write_text(json.dumps({"ref": "refs/heads/feature", "after": head}))
        proc = subprocess.run(
            [sys.executable, "-m", "gitml", "ci", "comment"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 1 and proc.stdout == ""
        assert (
            proc.stderr.startswith("Error: no pull request number") and proc.stderr.count("\n") == 1
        )
        assert len(api.comments) == 1

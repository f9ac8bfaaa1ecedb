"""Deploy plans (what is current, already deployed?) and deployment records on the branch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitml.ci.deployments import (
    list_deployments,
    new_deployment,
    plan_deployment,
    record_deployment,
)
from gitml.registry.access import open_registry
from tests.conftest import git, run_cli
from tests.registry._util import commit, tag


def deploy(repo: Path, model: str, version: int, when: int = 0) -> None:
    reg = open_registry(str(repo))
    record_deployment(
        reg.repo,
        new_deployment(
            reg, model, version, "production", "production", now_ms=1_800_000_000_000 + when
        ),
    )


@pytest.fixture
def registry(repo: Path) -> Path:
    """cnn v1 and v2 registered on two commits."""
    commit(repo, "one")
    tag(repo, "cnn@v1.0.0", 1)
    commit(repo, "two")
    tag(repo, "cnn@v2.0.0", 2)
    return repo


def plan(repo: Path, fired: str | None = None, model: str | None = None):  # type: ignore[no-untyped-def]
    return plan_deployment(
        open_registry(str(repo)),
        tag=fired,
        model=model,
        stage="production",
        environment="production",
    )


def test_deploy_then_skip_then_promote_then_roll_back(registry: Path) -> None:
    tag(registry, "cnn#production#3", 3, "cnn@v1.0.0^{commit}")
    p = plan(registry, "cnn#production#3")
    assert (p.deploy, p.model, p.version, p.model_uri) == (True, "cnn", 1, "models:/cnn/1")
    deploy(registry, "cnn", 1)
    p = plan(registry, "cnn#production#3")
    assert not p.deploy and "already deployed" in p.reason
    tag(registry, "cnn#production#4", 4, "cnn@v2.0.0^{commit}")
    p = plan(registry, "cnn#production#4")
    assert (p.deploy, p.version) == (True, 2) and "replacing version 1" in p.reason
    deploy(registry, "cnn", 2, when=1)
    tag(registry, "cnn#production!#5", 5, "cnn@v2.0.0^{commit}")  # unassign v2: v1 is current again
    p = plan(registry, "cnn#production!#5")
    assert (p.deploy, p.version) == (True, 1)


def test_two_promotions_in_one_push_deploy_the_newest(registry: Path) -> None:
    tag(registry, "cnn#production#3", 3, "cnn@v1.0.0^{commit}")
    tag(registry, "cnn#production#4", 4, "cnn@v2.0.0^{commit}")
    for fired in ("cnn#production#3", "cnn#production#4"):  # whichever job runs first
        assert plan(registry, fired).version == 2


def test_a_staging_tag_changes_nothing_in_production(registry: Path) -> None:
    tag(registry, "cnn#production#3", 3, "cnn@v1.0.0^{commit}")
    deploy(registry, "cnn", 1)
    tag(registry, "cnn#staging#4", 4, "cnn@v2.0.0^{commit}")
    assert not plan(registry, "cnn#staging#4").deploy


@pytest.mark.parametrize("fired", ["v1.0.0", "release", "", None])
def test_not_a_registry_tag_deploys_nothing(registry: Path, fired: str | None) -> None:
    p = plan(registry, fired)
    assert not p.deploy and "not a registry tag" in p.reason


def test_nothing_current_deploys_nothing(registry: Path) -> None:
    p = plan(registry, "cnn@v2.0.0")
    assert not p.deploy and "nothing is current" in p.reason


def test_model_names_with_a_slash(repo: Path) -> None:
    commit(repo, "one")
    tag(repo, "team/cnn@v1.0.0", 1)
    tag(repo, "team/cnn#production#2", 2, "team/cnn@v1.0.0^{commit}")
    tag(repo, "team@v1.0.0", 3)  # "team" in environment "cnn"? never confused
    p = plan(repo, "team/cnn#production#2")
    assert (p.deploy, p.model, p.version) == (True, "team/cnn", 1)
    assert "nothing is current" in plan(repo, model="team").reason  # team/cnn's tags are not team's
    deploy(repo, "team/cnn", 1)
    files = git("ls-tree", "-r", "--name-only", "gitml", cwd=repo).split()
    assert any(f.startswith("deployments/team~cnn/production/") for f in files)
    assert [d.model for d in list_deployments(open_registry(str(repo)).repo)] == ["team/cnn"]
    assert not plan(repo, model="team/cnn").deploy


def test_records_never_touch_the_working_tree(registry: Path) -> None:
    tag(registry, "cnn#production#3", 3, "cnn@v1.0.0^{commit}")
    head = git("rev-parse", "HEAD", cwd=registry)
    deploy(registry, "cnn", 1)
    assert git("status", "--porcelain", cwd=registry) == ""
    assert git("rev-parse", "HEAD", cwd=registry) == head
    assert git("log", "-1", "--format=%s", "gitml", cwd=registry).startswith(
        "deployment: cnn version 1"
    )


def test_hostile_records_are_skipped(registry: Path) -> None:
    tag(registry, "cnn#production#3", 3, "cnn@v1.0.0^{commit}")
    deploy(registry, "cnn", 1)
    repo = open_registry(str(registry)).repo
    bad = {
        "deployments/cnn/production/29991231T235959999Z-deadbeef.json": b"{not json",
        "deployments/cnn/production/29991231T235959998Z-deadbeee.json": json.dumps(
            {
                "model": "cnn",
                "version": 1,
                "stage": "x",
                "environment": "production",
                "time": 1,
                "extra": "$(rm -rf /)",
            }
        ).encode(),
        "deployments/cnn/production/29991231T235959997Z-deadbeed.json": b"[" * 100_000,
        "deployments/cnn/production/not-a-record.json": b"{}",
        "deployments/cnn/production/29991231T235959996Z-deadbeec.json": json.dumps(
            {
                "model": "other",
                "version": 9,
                "stage": "production",
                "environment": "production",
                "time": 5,
            }
        ).encode(),
    }
    repo.commit(lambda tree: bad, "hostile records")
    assert [d.version for d in list_deployments(repo)] == [1, 9]
    assert not plan(registry, "cnn#production#3").deploy  # the newest *valid* record of cnn says 1


def test_record_refuses_a_version_the_registry_lacks(registry: Path) -> None:
    from gitml.exceptions import ResourceDoesNotExist

    with pytest.raises(ResourceDoesNotExist):
        new_deployment(open_registry(str(registry)), "cnn", 7, "production", "production")


def test_cli_plan_record_list(
    registry: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tag(registry, "cnn#production#3", 3, "cnn@v1.0.0^{commit}")
    code, out, err = run_cli(capsys, "deployments", "plan", "--tag", "cnn#production#3")
    assert (code, err) == (0, "")
    lines = dict(line.split("=", 1) for line in out.splitlines())
    assert lines["deploy"] == "true" and lines["model"] == "cnn" and lines["version"] == "1"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    code, out, _ = run_cli(
        capsys,
        "deployments",
        "record",
        "--model",
        "cnn",
        "--version",
        "1",
        "--stage",
        "production",
        "--environment",
        "production",
    )
    assert code == 0 and out.startswith("Recorded cnn version 1 in production")
    code, out, _ = run_cli(capsys, "deployments", "list", "--json")
    [d] = json.loads(out)
    assert d["pipeline_url"] == "https://github.com/acme/shop/actions/runs/42"
    assert (d["model"], d["version"], d["semver"], d["git_tag"]) == (
        "cnn",
        1,
        "v1.0.0",
        "cnn@v1.0.0",
    )
    code, out, _ = run_cli(capsys, "deployments", "list")
    assert "cnn" in out and "https://github.com/acme/shop/actions/runs/42" in out
    code, out, _ = run_cli(capsys, "deployments", "plan", "--model", "cnn")
    assert "deploy=false" in out
    code, _, err = run_cli(capsys, "deployments", "plan", "--model", "cnn", "--stage", "../x")
    assert code == 1 and err.startswith("Error: stage")

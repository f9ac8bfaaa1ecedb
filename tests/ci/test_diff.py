"""`diff_runs`: the latest finished run of two revisions, compared and rendered."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import gitml as mlflow
from gitml.ci.diff import diff_runs, format_markdown, format_table, higher_is_better
from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.tracking.tracker import get_tracker
from tests.conftest import git, run_cli


def commit(repo: Path, text: str) -> str:
    (repo / "train.py").write_text(text)
    git("commit", "-q", "-am", text, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


def log_run(params: dict[str, object], metrics: dict[str, float], status: str = "FINISHED") -> str:
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
    if status != "FINISHED":
        mlflow.MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


@pytest.fixture(params=["index", "grep"])
def branches(repo: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """main with a run, and a feature branch with a better and a worse metric.

    Runs are looked up through the query index when it exists, else with `git grep`:
    every test runs both ways.
    """
    mlflow.set_tracking_uri(str(repo))
    base = log_run({"lr": 0.1, "epochs": 3}, {"accuracy": 0.80, "val_loss": 0.50, "f1": 0.6})
    git("checkout", "-q", "-b", "feature", cwd=repo)
    commit(repo, "print('v2')\n")
    head = log_run({"lr": 0.2, "epochs": 3}, {"accuracy": 0.90, "val_loss": 0.55, "f1": 0.6})
    tracker = get_tracker(str(repo))
    index_file = tracker.repo.state_dir / "index.sqlite"
    if request.param == "index":
        tracker.index()
        assert index_file.exists()
    else:
        index_file.unlink(missing_ok=True)
    return {"base": base, "head": head}


def test_defaults_compare_merge_base_with_head(branches: dict[str, str]) -> None:
    d = diff_runs()
    assert (d.a.run_id, d.b.run_id) == (branches["base"], branches["head"])
    assert d.a.ref == "main" and d.b.ref == "HEAD"
    assert [p.key for p in d.params] == ["lr"]  # unchanged params are left out
    lr = d.params[0]
    assert (lr.old, lr.new) == ("0.1", "0.2") and lr.change == pytest.approx(0.1)
    m = {c.key: c for c in d.metrics}
    assert set(m) == {"accuracy", "val_loss"}
    assert m["accuracy"].change == pytest.approx(0.1) and m["accuracy"].relative == pytest.approx(
        0.125
    )
    assert m["accuracy"].better is True
    assert m["val_loss"].better is False  # a loss going up is worse
    assert {c.key for c in diff_runs(all_keys=True).metrics} == {"accuracy", "val_loss", "f1"}


def test_sides_by_run_id_branch_and_tag(branches: dict[str, str], repo: Path) -> None:
    git("tag", "release-1", "main", cwd=repo)
    d = diff_runs(branches["head"], "release-1")
    assert (d.a.run_id, d.b.run_id) == (branches["head"], branches["base"])
    assert d.b.commit == git("rev-parse", "main", cwd=repo).strip()
    assert {c.key: c.better for c in d.metrics} == {"accuracy": False, "val_loss": True}


def test_latest_finished_run_wins(branches: dict[str, str], repo: Path) -> None:
    newer = log_run({"lr": 0.3}, {"accuracy": 0.95})
    log_run({"lr": 9}, {"accuracy": 0.0}, status="FAILED")  # not finished: ignored
    assert diff_runs("main", "HEAD").b.run_id == newer


def test_a_commit_without_runs_uses_its_nearest_ancestor_with_one(
    branches: dict[str, str], repo: Path
) -> None:
    evaluated = git("rev-parse", "HEAD", cwd=repo).strip()
    commit(repo, "print('docs only')\n")
    d = diff_runs("main", "HEAD")
    assert d.b.run_id == branches["head"] and d.b.run_commit == evaluated
    assert d.b.commit != evaluated


def test_a_run_found_by_its_source_commit_tag(branches: dict[str, str], repo: Path) -> None:
    target = commit(repo, "print('v3')\n")
    git("checkout", "-q", "main", cwd=repo)
    with mlflow.start_run() as run:  # ran elsewhere, then attributed to `target` by its tag
        mlflow.set_tag("mlflow.source.git.commit", target)
        mlflow.log_metric("accuracy", 0.99)
    assert diff_runs("main", target, max_ancestors=0).b.run_id == run.info.run_id


def test_errors_name_the_side(branches: dict[str, str], repo: Path) -> None:
    with pytest.raises(InvalidParameterValue, match="nope"):
        diff_runs("nope", "HEAD")
    orphan = commit(repo, "print('x')\n")
    git("checkout", "-q", "--orphan", "lonely", cwd=repo)
    git("commit", "-q", "-m", "lonely", cwd=repo)
    with pytest.raises(ResourceDoesNotExist, match="no finished run for HEAD"):
        diff_runs(orphan, "HEAD")


def test_markdown_has_the_shape_of_dvc_metrics_diff(branches: dict[str, str]) -> None:
    md = format_markdown(diff_runs())
    lines = md.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("| Path") and "Metric" in ln)
    cols = [c.strip() for c in lines[header].strip("|").split("|")]
    assert cols == ["Path", "Metric", "main (" + cols[2][6:], "HEAD (" + cols[3][6:], "Change"]
    assert set(lines[header + 1]) <= {"|", "-"}
    acc = next(ln for ln in lines if "| accuracy" in ln)
    assert "▲ +0.1 (+12.50%) better" in acc
    loss = next(ln for ln in lines if "| val_loss" in ln)
    assert "▲ +0.05 (+10.00%) worse" in loss
    assert any("| Param" in ln for ln in lines)
    text = format_table(diff_runs())
    assert "accuracy" in text and "|" not in text


def test_json_is_plain_data_and_non_finite_values_survive(branches: dict[str, str]) -> None:
    log_run({"lr": 0.2, "epochs": 3}, {"accuracy": math.nan, "val_loss": math.inf})
    d = diff_runs()
    data = json.loads(json.dumps(d.to_dict()))
    m = {c["key"]: c for c in data["metrics"]}
    assert m["accuracy"]["new"] == "NaN" and m["accuracy"]["change"] is None
    assert m["val_loss"]["new"] == "Infinity"
    assert data["a"]["run_id"] == branches["base"]


@pytest.mark.parametrize(
    ("name", "higher"),
    [
        ("accuracy", True), ("val_acc", True), ("f1", True), ("auc", True), ("recall@5", True),
        ("loss", False), ("val_loss", False), ("trainloss", False), ("test/mse", False),
        ("rmse", False), ("error_rate", False), ("epoch_time", False), ("latency_ms", False),
        ("perplexity", False), ("wer", False),
    ],
)  # fmt: skip
def test_better_direction_by_name(name: str, higher: bool) -> None:
    assert higher_is_better(name) is higher


def test_lower_is_better_override() -> None:
    assert higher_is_better("score", lower_is_better=["score"]) is False


def test_runs_of_gitml_run_are_found_at_their_own_commit(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`gitml run` names the commit in the run's tags: the base side's search must not make
    the base's run hide the head's (a bug the generated workflows hit under act)."""
    (repo / "MLproject").write_text(
        "name: p\nentry_points:\n  main:\n    command: python train.py\n"
    )
    (repo / "train.py").write_text(
        "import gitml\ngitml.log_metric('accuracy', float(open('acc.txt').read()))\n"
    )
    (repo / "acc.txt").write_text("0.8\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "project", cwd=repo)
    ids = []
    for accuracy in ("0.8", "0.9"):
        if ids:
            git("checkout", "-q", "-b", "feature", cwd=repo)
            (repo / "acc.txt").write_text(accuracy)
            git("commit", "-q", "-am", accuracy, cwd=repo)
        code, out, _ = run_cli(capsys, "run", ".")
        assert code == 0, out
        ids.append(out.split()[-2])
    d = diff_runs()
    assert (d.a.run_id, d.b.run_id) == tuple(ids)
    assert [(m.old, m.new) for m in d.metrics] == [(0.8, 0.9)]


def test_a_pull_request_into_another_branch_compares_with_that_branch(repo: Path) -> None:
    mlflow.set_tracking_uri(str(repo))
    log_run({}, {"accuracy": 0.80})  # main
    git("checkout", "-q", "-b", "develop", cwd=repo)
    commit(repo, "print('develop')\n")
    on_develop = log_run({}, {"accuracy": 0.85})
    git("checkout", "-q", "-b", "feature", cwd=repo)
    commit(repo, "print('feature')\n")
    head = log_run({}, {"accuracy": 0.90})
    assert diff_runs().a.ref == "main"  # no target named: the default branch
    d = diff_runs(base_branch="develop")  # GITHUB_BASE_REF / CI_MERGE_REQUEST_TARGET_BRANCH_NAME
    assert (d.a.run_id, d.b.run_id, d.a.ref) == (on_develop, head, "develop")


@pytest.mark.parametrize(
    ("env", "branch"),
    [
        ({"GITHUB_BASE_REF": "develop"}, "develop"),
        ({"CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "release/1.x"}, "release/1.x"),
        ({"GITHUB_BASE_REF": "--upload-pack=touch x"}, None),  # never an option to git
        ({"GITHUB_BASE_REF": "a..b"}, None),
        ({}, None),
    ],
)
def test_the_target_branch_comes_from_the_ci(env: dict[str, str], branch: str | None) -> None:
    from gitml.config import resolve_ci_config

    assert resolve_ci_config(env).base_branch == branch

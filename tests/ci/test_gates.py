"""`gitml diff --fail-on`: metric gates, GitLab's metrics.txt and GitHub's step summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import gitml as mlflow
from gitml.ci.gates import check_gates, format_metrics_txt, parse_gate
from gitml.exceptions import InvalidParameterValue
from tests.conftest import git, run_cli


@pytest.mark.parametrize(
    ("expr", "key", "op", "threshold", "kind"),
    [
        ("accuracy<-0.01", "accuracy", "<", -0.01, "change"),
        ("val_loss>+5%", "val_loss", ">", 0.05, "relative"),
        ("accuracy<0.9", "accuracy", "<", 0.9, "value"),
        ("f1 <= -2.5e-2", "f1", "<=", -0.025, "change"),
        ("eval/top-5 acc>=-10%", "eval/top-5 acc", ">=", -0.1, "relative"),
        ("latency_ms>250", "latency_ms", ">", 250.0, "value"),
    ],
)
def test_parse_gate(expr: str, key: str, op: str, threshold: float, kind: str) -> None:
    g = parse_gate(expr)
    assert (g.key, g.op, g.kind) == (key, op, kind) and g.threshold == pytest.approx(threshold)


@pytest.mark.parametrize(
    "expr",
    ["accuracy", "accuracy<", "<0.1", "accuracy<5%", "acc=0.1", "acc<0.1x", "a" * 600 + "<1"],
)
def test_bad_gates_are_one_clear_error(expr: str) -> None:
    with pytest.raises(InvalidParameterValue, match="gate"):
        parse_gate(expr)


@pytest.mark.parametrize(
    ("expr", "old", "new", "status"),
    [
        ("accuracy<-0.01", 0.80, 0.78, "crossed"),
        ("accuracy<-0.01", 0.80, 0.795, "passed"),
        ("val_loss>+5%", 0.50, 0.55, "crossed"),  # +10%
        ("val_loss>+5%", 0.50, 0.51, "passed"),  # +2%
        ("accuracy<0.9", 0.95, 0.85, "crossed"),
        ("accuracy<0.9", None, 0.95, "passed"),  # a value gate needs no base
        ("accuracy<-0.01", None, 0.5, "skipped"),  # nothing to compare with
        ("val_loss>+5%", 0.0, 0.1, "skipped"),  # no relative change from 0
        ("accuracy<-0.01", 0.8, None, "crossed"),  # the metric went missing
        ("accuracy<-0.01", 0.8, float("nan"), "crossed"),
    ],
)
def test_check_gates(expr: str, old: float | None, new: float | None, status: str) -> None:
    old_m = {} if old is None else {"accuracy": old, "val_loss": old}
    new_m = {} if new is None else {"accuracy": new, "val_loss": new}
    [result] = check_gates([parse_gate(expr)], old_m, new_m)
    assert result.status == status


def test_metrics_txt_names_are_openmetrics_names() -> None:
    text = format_metrics_txt(
        {"accuracy": 0.9, "eval/top-5 acc": 0.5, "1st": 2, "bad": float("inf"), "flag": True}
    )
    assert text.splitlines() == ["_1st 2.0", "accuracy 0.9", "eval_top_5_acc 0.5"]


@pytest.fixture
def feature(repo: Path) -> Path:
    mlflow.set_tracking_uri(str(repo))
    with mlflow.start_run():
        mlflow.log_metrics({"accuracy": 0.80, "val_loss": 0.50})
    git("checkout", "-q", "-b", "feature", cwd=repo)
    (repo / "train.py").write_text("print('v2')\n")
    git("commit", "-q", "-am", "v2", cwd=repo)
    with mlflow.start_run():
        mlflow.log_metrics({"accuracy": 0.78, "val_loss": 0.51})
        mlflow.log_param("note", "<img src=x onerror=alert(1)> | injected")
    return repo


def test_cli_gate_crossed_exits_3(feature: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "diff", "--fail-on", "accuracy<-0.01", "--fail-on", "val_loss>+5%"
    )
    assert code == 3
    assert "gate accuracy<-0.01: crossed" in out and "gate val_loss>+5%: passed" in out
    assert err == "Error: metric gate crossed: accuracy<-0.01\n"


def test_cli_gates_passed_exit_0(feature: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "diff", "-q", "--fail-on", "accuracy<-0.05")
    assert (code, out, err) == (0, "", "")


def test_cli_bad_gate_exits_1_before_reading(
    feature: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "diff", "--fail-on", "accuracy")
    assert code == 1 and err.startswith("Error: bad gate")


def test_cli_json_carries_the_gates(feature: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "diff", "--json", "--fail-on", "accuracy<0.9")
    assert code == 3
    assert json.loads(out)["gates"] == [
        {"gate": "accuracy<0.9", "status": "crossed", "observed": 0.78, "reason": ""}
    ]


def test_cli_writes_metrics_txt_and_the_step_summary(
    feature: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    metrics = tmp_path / "metrics.txt"
    code, out, _ = run_cli(
        capsys, "diff", "--md", "--metrics-file", str(metrics), "--fail-on", "accuracy<-0.5"
    )
    assert code == 0
    assert metrics.read_text() == "accuracy 0.78\nval_loss 0.51\n"
    text = summary.read_text()
    assert (
        text.startswith("earlier step\n")
        and "| accuracy" in text
        and "All 1 metric gates passed." in text
    )
    assert text.endswith(out)
    code, _, _ = run_cli(capsys, "diff", "--no-summary", "-q")
    assert summary.read_text() == text


@pytest.fixture
def first_pr(repo: Path) -> Path:
    """A feature branch with a run, off a main whose commits have none (a first pull request)."""
    mlflow.set_tracking_uri(str(repo))
    git("checkout", "-q", "-b", "feature", cwd=repo)
    (repo / "train.py").write_text("print('v2')\n")
    git("commit", "-q", "-am", "v2", cwd=repo)
    with mlflow.start_run():
        mlflow.log_metrics({"accuracy": 0.85, "val_loss": 0.4})
    return repo


def test_no_baseline_passes_the_gates_on_changes_with_one_warning(
    first_pr: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    metrics = tmp_path / "metrics.txt"
    code, out, err = run_cli(
        capsys, "diff", "-q", "--metrics-file", str(metrics), "--fail-on", "accuracy<-0.01"
    )
    assert (code, out) == (0, "")
    assert err.count("\n") == 1
    assert err.startswith("Warning: no baseline run was found on main: the metric gates were not")
    assert metrics.read_text() == "accuracy 0.85\nval_loss 0.4\n"  # the head's, for GitLab
    text = summary.read_text()
    assert "No baseline run was found on `main`" in text and "| accuracy | 0.85 |" in text
    assert "skipped (no baseline run on main)" in text


def test_no_baseline_still_checks_value_gates(
    first_pr: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        capsys, "diff", "--json", "--fail-on", "accuracy<0.9", "--fail-on", "val_loss>+5%"
    )
    assert code == 3
    data = json.loads(out)
    assert data["a"] is None and data["no_baseline"] == "main" and data["b"]["ref"] == "HEAD"
    assert [g["status"] for g in data["gates"]] == ["crossed", "skipped"]
    assert "gates on changes were not checked" in err
    assert err.endswith("Error: metric gate crossed: accuracy<0.9\n")


def test_require_baseline_and_plain_diff_fail_in_one_line(
    first_pr: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["--fail-on", "accuracy<-0.01", "--require-baseline"], ["--md"]):
        code, out, err = run_cli(capsys, "diff", *args)
        assert (code, out) == (1, "")
        assert err.startswith("Error: no finished run for main (") and err.count("\n") == 1


def test_a_head_without_a_run_is_an_error_even_without_a_baseline(
    first_pr: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (first_pr / "train.py").write_text("print('v3')\n")
    git("commit", "-q", "-am", "v3", cwd=first_pr)
    git("checkout", "-q", "--orphan", "lonely", cwd=first_pr)
    git("commit", "-q", "-m", "lonely", cwd=first_pr)
    code, out, err = run_cli(capsys, "diff", "-q", "main", "HEAD", "--fail-on", "accuracy<0.9")
    assert (code, out) == (1, "")
    assert err.startswith("Error: no finished run for HEAD (") and err.count("\n") == 1


def test_no_baseline_report_keeps_a_teammates_metric_names_inert() -> None:
    # Metric names planted on the branch (the API refuses them) render as text in the comment.
    from gitml.ci.diff import DiffSide
    from gitml.ci.report import DiffReport, report_markdown

    head = DiffSide("HEAD", "c" * 40, "a" * 32, None, "c" * 40)
    evil = "x<img src=y onerror=alert(1)>|z\n## Pwned"
    md = report_markdown(
        DiffReport(None, (), {evil: 1.0, "acc": "![t](https://e.example/p)"}, head, "main`|x")
    )
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and all(len(re.split(r"(?<!\\)\|", r)) == 4 for r in rows), md
    assert not re.search(r"(?<!\\)(<img|!\[)", md) and "\n## Pwned" not in md, md

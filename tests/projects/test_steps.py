"""Steps: depends_on runs dependencies first, each its own run under a parent; --cache skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitml.tracking.client import GitMLClient
from tests.conftest import run_cli
from tests.projects.test_run import branch_tip, project

STEP = """\
import sys
import gitml as mlflow
name = sys.argv[1]
with open("steps.log", "a") as f:
    f.write(name + "\\n")
mlflow.log_metric(name, 1.0)
"""

PIPELINE = """\
name: three-steps
entry_points:
  prepare:
    parameters:
      rows: {type: int, default: 10}
    command: "python step.py prepare --rows {rows}"
  train:
    depends_on: [prepare]
    parameters:
      lr: {type: float, default: 0.1}
    resources: {cpu: 1}
    command: "python step.py train --lr {lr}"
  evaluate:
    depends_on: [train, prepare]
    command: "python step.py evaluate"
"""


def steps_run(root: Path) -> list[str]:
    log = root / "steps.log"
    return log.read_text().split() if log.exists() else []


def test_dependencies_run_first_each_as_a_child_run(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, {"MLproject": PIPELINE, "step.py": STEP, ".gitignore": "steps.log\n"})
    code, out, err = run_cli(capsys, "run", "-e", "evaluate", "-P", "lr=0.2")
    assert code == 0, err
    assert steps_run(repo) == ["prepare", "train", "evaluate"]
    lines = out.split("\n")
    ids = [line.split()[0] for line in lines if line.strip()]
    client = GitMLClient(repo)
    parent = client.get_run(ids[-1])
    assert parent.info.status == "FINISHED"
    children = [client.get_run(i) for i in ids[:-1]]
    assert [c.data.tags["mlflow.project.entryPoint"] for c in children] == [
        "prepare",
        "train",
        "evaluate",
    ]
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert children[1].data.params == {"lr": "0.2"} and children[0].data.params == {"rows": "10"}
    assert parent.data.tags["gitml.step.train"] == children[1].info.run_id


def test_cache_skips_unchanged_steps_and_links_the_earlier_run(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(repo, {"MLproject": PIPELINE, "step.py": STEP, ".gitignore": "steps.log\n"})
    code, out1, err = run_cli(capsys, "run", "-e", "evaluate", "--cache")
    assert code == 0, err
    code, out2, err = run_cli(capsys, "run", "-e", "evaluate", "--cache", "-P", "lr=0.3")
    assert code == 0, err
    # prepare was reused; train (new lr) and evaluate ran again
    assert steps_run(repo) == ["prepare", "train", "evaluate", "train", "evaluate"]
    first, second = out1.split("\n"), out2.split("\n")
    assert second[0] == first[0].split()[0] + " FINISHED (cached)"
    assert "unchanged: reusing finished run" in err


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "entry_points:\n  a:\n    depends_on: [b]\n    command: x\n  b:\n    depends_on: [a]\n    command: y\n",
            "depends_on cycle: a -> b -> a",
        ),
        ("entry_points:\n  a:\n    depends_on: [c]\n    command: x\n", "unknown step 'c'"),
    ],
)
def test_bad_step_graphs_are_refused(
    repo: Path, capsys: pytest.CaptureFixture[str], text: str, match: str
) -> None:
    project(repo, {"MLproject": text})
    code, _, err = run_cli(capsys, "run", "-e", "a")
    assert code == 1 and match in err
    assert branch_tip(repo) == ""


def test_a_failing_step_stops_the_pipeline(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failing = PIPELINE.replace(
        'command: "python step.py train --lr {lr}"', "command: \"python -c 'raise SystemExit(7)'\""
    )
    project(repo, {"MLproject": failing, "step.py": STEP, ".gitignore": "steps.log\n"})
    code, out, _ = run_cli(capsys, "run", "-e", "evaluate")
    assert code == 7
    assert steps_run(repo) == ["prepare"]
    ids = [line.split()[0] for line in out.splitlines() if line.strip()]
    client = GitMLClient(repo)
    assert [client.get_run(i).info.status for i in ids] == ["FINISHED", "FAILED", "FAILED"]

"""`gitml reproduce`: a past run re-run at its commit and patch; metrics compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitml.tracking.client import GitMLClient
from tests.conftest import git, run_cli
from tests.projects.test_run import branch_tip, project

pytest.importorskip("sklearn", reason="scikit-learn is needed for the training project")

TRAIN = """\
import argparse
import gitml as mlflow
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
ap = argparse.ArgumentParser()
ap.add_argument("--C", type=float)
args = ap.parse_args()
X, y = make_classification(n_samples=300, n_features=8, random_state=0)
model = LogisticRegression(C=args.C, max_iter=200).fit(X[:200], y[:200])
mlflow.log_metric("accuracy", model.score(X[200:], y[200:]))
mlflow.log_metric("coef_sum", float(model.coef_.sum()) * SCALE)
if args.C == 1.0:
    import gitml.sklearn
    gitml.sklearn.log_model(model, "model")
"""

MLPROJECT = """\
name: sk
entry_points:
  main:
    parameters:
      C: {type: float, default: 1.0}
    command: "python train.py --C {C}"
  noisy:
    command: "python -c 'import random, gitml; gitml.log_metric(\\"r\\", random.random())'"
"""


def sk_project(root: Path) -> Path:
    return project(root, {"MLproject": MLPROJECT, "train.py": TRAIN.replace("SCALE", "1.0")})


def test_a_dirty_run_reproduces_bitwise(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sk_project(repo)
    (repo / "train.py").write_text(TRAIN.replace("SCALE", "2.0"))  # uncommitted change
    code, out, err = run_cli(capsys, "run", "-P", "C=0.5")
    assert code == 0, err
    original = out.split()[-2]
    git("checkout", "--", "train.py", cwd=repo)  # the working tree no longer has the change
    code, out, err = run_cli(capsys, "reproduce", original)
    assert code == 0, err
    assert "within tolerance" in out and "code: same" in out and "DRIFT" not in out
    client = GitMLClient(repo)
    runs = client.search_runs(["0"], filter_string=f"tags.`gitml.reproduces` = '{original}'")
    assert len(runs) == 1
    new, old = runs[0], client.get_run(original)
    assert new.data.metrics == old.data.metrics  # bitwise equal, the patch was applied
    assert new.data.params == old.data.params == {"C": "0.5"}
    assert not any(
        p.name.startswith("gitml-reproduce")
        for p in Path(git("worktree", "list", cwd=repo).split()[0]).parent.iterdir()
    )
    assert len(git("worktree", "list", cwd=repo).splitlines()) == 1


def test_drift_has_its_own_exit_status_and_tolerances_apply(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sk_project(repo)
    code, out, err = run_cli(capsys, "run", "-e", "noisy")
    assert code == 0, err
    original = out.split()[-2]
    code, out, err = run_cli(capsys, "reproduce", original)
    assert code == 3 and "DRIFT" in out
    code, out, err = run_cli(capsys, "reproduce", original[:12], "--atol", "r=1.0", "--json")
    assert code == 0, err
    assert json.loads(out)["within_tolerance"] is True


def test_a_registered_version_reproduces(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sk_project(repo)
    code, out, err = run_cli(capsys, "run")
    run_id = out.split()[-2]
    client = GitMLClient(repo)
    client.create_registered_model("clf")
    client.create_model_version("clf", f"runs:/{run_id}/model", run_id=run_id)
    code, out, err = run_cli(capsys, "reproduce", "models:/clf/1")
    assert code == 0, err
    from gitml.registry.access import Registry

    semver = next(iter(Registry(client._tracker.repo).state().models["clf"].versions))
    code, out, err = run_cli(capsys, "reproduce", f"clf@{semver}")
    assert code == 0, err


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("0" * 32, "not found"),
        ("nope", "is not a run id"),
        ("0000", "no run id starts with '0000'"),  # a short run id that names none
        ("clf@v9.9.9", "no registered version"),
        ("--rtol=1", "is not a run id"),
    ],
)
def test_bad_targets(
    repo: Path, capsys: pytest.CaptureFixture[str], target: str, match: str
) -> None:
    sk_project(repo)
    code, _, err = run_cli(capsys, "reproduce", "--", target)
    assert code == 1 and match in err and len(err.strip().splitlines()) == 1


def test_a_commit_missing_from_the_clone_says_fetch(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sk_project(repo)
    (repo / "extra.txt").write_text("x\n")
    git("add", "extra.txt", cwd=repo)
    git("commit", "-q", "-m", "later", cwd=repo)
    code, out, err = run_cli(capsys, "run")
    original = out.split()[-2]
    git("reset", "-q", "--hard", "HEAD~1", cwd=repo)
    git("reflog", "expire", "--expire=now", "--all", cwd=repo)
    git("gc", "-q", "--prune=now", cwd=repo)
    tip = branch_tip(repo)
    code, _, err = run_cli(capsys, "reproduce", original)
    assert code == 1 and "is not in this clone: git fetch origin main" in err
    assert branch_tip(repo) == tip


def test_a_run_not_started_by_gitml_run_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gitml as mlflow

    with mlflow.start_run() as r:
        mlflow.log_metric("m", 1.0)
    code, _, err = run_cli(capsys, "reproduce", r.info.run_id)
    assert code == 1 and "was not started by 'gitml run'" in err


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ({"mlflow.source.git.commit": "--upload-pack=x"}, "is not a commit id"),
        (
            {
                "gitml.project.run": json.dumps(
                    {"entry_point": "main", "given": {}, "project_dir": "../../etc"}
                )
            },
            "not a relative path",
        ),
        (
            {"gitml.project.run": json.dumps({"entry_point": "--help", "given": {}})},
            "entry point '--help' is invalid",
        ),
        (
            {"gitml.project.run": json.dumps({"entry_point": "main", "given": {"a": 1}})},
            "not a map of strings",
        ),
        (
            {
                "gitml.project.run": json.dumps(
                    {"entry_point": "main", "given": {}, "env_manager": "sh"}
                )
            },
            "env manager 'sh'",
        ),
        ({"gitml.project.run": "{not json"}, "not a JSON record"),
        ({"gitml.provenance.diff_sha256": "../x"}, "not a sha256"),
    ],
)
def test_hostile_records_on_the_branch_are_refused(
    repo: Path, capsys: pytest.CaptureFixture[str], tags: dict[str, str], match: str
) -> None:
    import gitml as mlflow

    base = {
        "gitml.project.cache_key": "0" * 64,
        "mlflow.source.git.commit": git("rev-parse", "HEAD", cwd=repo).strip(),
        "gitml.project.run": json.dumps({"entry_point": "main", "given": {}, "project_dir": "."}),
    }
    with mlflow.start_run(tags={**base, **tags}) as r:
        pass
    code, _, err = run_cli(capsys, "reproduce", r.info.run_id)
    assert code == 1 and match in err and len(err.strip().splitlines()) == 1
    assert len(git("worktree", "list", cwd=repo).splitlines()) == 1


def test_a_reproduction_that_fails_exits_4(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the run needs an ignored local file, which a worktree at the commit does not have
    project(
        repo,
        {
            "MLproject": "entry_points:\n  main:\n    command: python need.py\n",
            "need.py": "open('local.cfg').read()\n",
            ".gitignore": "local.cfg\n",
        },
    )
    (repo / "local.cfg").write_text("secret\n")
    code, out, err = run_cli(capsys, "run")
    assert code == 0, err
    code, out, err = run_cli(capsys, "reproduce", out.split()[-2])
    assert code == 4 and "FAILED" in out

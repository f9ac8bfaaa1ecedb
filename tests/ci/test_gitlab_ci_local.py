"""The generated .gitlab-ci.yml as GitLab reads it: gitlab-ci-local (npm, installed by
`make tools` under .tools/) validates it against GitLab's schema and evaluates its `rules:`
for merge requests, the default branch and registry tags."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gitml.ci.init import init_pipelines
from gitml.ci.options import InitOptions
from tests.conftest import git

GLCI = Path(__file__).resolve().parents[2] / ".tools/node_modules/.bin/gitlab-ci-local"

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

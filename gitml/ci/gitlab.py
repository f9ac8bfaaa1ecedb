"""The `.gitlab-ci.yml` that `gitml ci init gitlab` writes: the four stages of the pipeline.

Stages: data validation (the pipeline files still fit the repository), training (`gitml run`
on the GPU runner, `gitml push`), evaluation (the sticky MR note, the metric gates and the
metrics report), deployment (what is current in the stage, once, one at a time, recorded).
"""

from __future__ import annotations

from gitml.ci.options import InitOptions, marker_line, q_shell, q_yaml, run_block

__all__ = ["gitlab_files"]

_PIPELINE = """\
@@MARKER@@
# Secrets (Settings > CI/CD > Variables, masked): GITLAB_TOKEN, a project access token with
# the api and write_repository scopes and the Developer role (pushing needs it). The CI job
# token can neither write merge-request notes nor (by default) push, so gitml uses this one.
workflow:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_TAG
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH

stages:
  - data-validation
  - training
  - evaluation
  - deployment

variables:
  GITML_SPEC: @@SPEC@@
  GIT_DEPTH: "0"  # gitml diff compares with the merge base: it needs the history

default:
  image: python:3.11

.gitml-setup:
  before_script:
    - python -m pip install "$GITML_SPEC"
    - git config user.name "gitml CI"
    - git config user.email "gitml-ci@users.noreply.gitlab.com"
    # Protocol and port as the instance serves them (a self-managed one may use another port).
    - git remote set-url origin "${CI_SERVER_PROTOCOL}://gitml-ci:${GITLAB_TOKEN}@${CI_SERVER_HOST}:${CI_SERVER_PORT}/${CI_PROJECT_PATH}.git"
    # The runner's checkout may hold the fired tag as a lightweight tag: fetch tags as they are.
    - git fetch --force --tags origin
    - gitml pull

.gitml-changes:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH

gitml-validate:
  stage: data-validation
  extends: [.gitml-setup, .gitml-changes]
  script:
    - gitml ci check

gitml-train:
  stage: training
  extends: [.gitml-setup, .gitml-changes]
  # Runner tags are passed through as given.
  tags: @@RUNNER@@
  script:
    - set -o pipefail
    # The output is kept outside the checkout while the project runs: a new file in it
    # would mark the run dirty. The register job reads it from this job's artifacts.
    - gitml run . -e @@ENTRY@@ | tee "${TMPDIR:-/tmp}/gitml-run-$CI_JOB_ID.txt"
    - cp "${TMPDIR:-/tmp}/gitml-run-$CI_JOB_ID.txt" gitml-run.txt
    - gitml push
  artifacts:
    paths: [gitml-run.txt]

gitml-comment:
  stage: evaluation
  extends: .gitml-setup
  needs: [gitml-train]
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
  # The runs are already pushed: a comment that cannot be posted fails this job alone.
  allow_failure: true
  script:
    - gitml ci comment@@FAIL_ON@@

gitml-evaluate:
  stage: evaluation
  extends: .gitml-setup
  needs: [gitml-train]
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
  script:
    # Exit status 3 when a gate is crossed; metrics.txt feeds the merge request's metrics widget.
    - gitml diff --md --metrics-file metrics.txt@@FAIL_ON@@
  artifacts:
    when: always
    reports:
      metrics: metrics.txt
@@REGISTER@@
gitml-deploy:
  stage: deployment
  extends: .gitml-setup
  # Registry tags: deploy what is *current* in the stage (not the tag that fired), skip when
  # it is already deployed, one deployment at a time, and record it on the metadata branch.
  rules:
    - if: '$CI_COMMIT_TAG =~ /(@v|@deprecated|#)/'
  resource_group: gitml-deploy
  environment:
    name: @@ENVIRONMENT_YAML@@
  script:
    - set -o pipefail
    - gitml deployments plan --tag "$CI_COMMIT_TAG" --stage @@STAGE@@ --environment @@ENVIRONMENT@@ | tee gitml-plan.txt
    - |
      if grep -qx 'deploy=true' gitml-plan.txt; then
        GITML_MODEL="$(sed -n 's/^model=//p' gitml-plan.txt)"
        GITML_VERSION="$(sed -n 's/^version=//p' gitml-plan.txt)"
        GITML_MODEL_URI="$(sed -n 's/^model_uri=//p' gitml-plan.txt)"
        GITML_STAGE=@@STAGE@@
        GITML_ENVIRONMENT=@@ENVIRONMENT@@
        export GITML_MODEL GITML_VERSION GITML_MODEL_URI GITML_STAGE GITML_ENVIRONMENT
@@DEPLOY_COMMAND@@
        gitml deployments record --model "$GITML_MODEL" --version "$GITML_VERSION" --stage @@STAGE@@ --environment @@ENVIRONMENT@@
        gitml push
      fi
"""

_REGISTER = """
gitml-register:
  stage: evaluation
  extends: .gitml-setup
  needs: [gitml-train]
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
  script:
    - |
      run_id="$(tail -n 1 gitml-run.txt | cut -d' ' -f1)"
      if gitml diff -q HEAD^ HEAD@@FAIL_ON@@; then
        gitml models register "runs:/$run_id/@@ARTIFACT@@" @@MODEL@@
        gitml push
      fi
"""


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"@@{key}@@", value)
    assert "@@" not in template, template
    return template


def gitlab_files(o: InitOptions) -> dict[str, str]:
    """{path: text} of the file `gitml ci init gitlab` writes."""
    values = {
        "MARKER": marker_line(o),
        "SPEC": q_yaml(o.gitml_spec),
        "RUNNER": "[" + ", ".join(q_yaml(label) for label in o.gpu_runner) + "]",
        "ENTRY": q_shell(o.entry_point),
        "STAGE": q_shell(o.stage),
        "ENVIRONMENT": q_shell(o.environment),
        "ENVIRONMENT_YAML": q_yaml(o.environment),
        "DEPLOY_COMMAND": run_block(o.deploy_command, 8),
        "FAIL_ON": "".join(f" --fail-on {q_shell(g)}" for g in o.fail_on),
        "MODEL": q_shell(o.register or ""),
        "ARTIFACT": o.artifact_path,
    }
    values["REGISTER"] = _fill(_REGISTER, values) if o.register else ""
    return {".gitlab-ci.yml": _fill(_PIPELINE, values)}

"""The GitHub Actions files `gitml ci init github` writes: four workflows and a setup action.

Each known trap is handled where it bites, with a comment in the generated file saying why.
The text is assembled from fixed templates; the few values the user gives (runner labels,
entry point, stage, deploy command, gates) are quoted as YAML/shell strings, never spliced
into expressions.
"""

from __future__ import annotations

from gitml.ci.options import InitOptions, marker_line, q_shell, q_yaml, run_block

__all__ = ["github_files"]

_SETUP = """\
@@MARKER@@
name: gitml setup
description: Install gitml and pull the metadata branch (runs) and the registry tags from origin.
inputs:
  gitml-spec:
    description: The pip requirement that installs gitml.
    default: @@SPEC@@
  python-version:
    description: Python version to run gitml with.
    default: "3.11"
runs:
  using: composite
  steps:
    - uses: actions/setup-python@e797f83bcb11b83ae66e0230d6156d7c80228e7c  # v6.0.0
      with:
        python-version: ${{ inputs.python-version }}
    - name: Install gitml
      shell: bash
      env:
        GITML_SPEC: ${{ inputs.gitml-spec }}
      run: python -m pip install "$GITML_SPEC"
    - name: Pull runs and registry tags
      shell: bash
      run: |
        git config user.name "github-actions[bot]"
        git config user.email "41898282+github-actions[bot]@users.noreply.github.com"
        # Tags: actions/checkout may have fetched the tag that fired as a lightweight tag
        # (or none at all); the registry reads annotated tags, so fetch them as they are.
        git fetch --force --tags origin
        gitml pull
"""

_ACTIONLINT = """\
@@MARKER@@
# actionlint: the runner labels gitml's workflows use that GitHub does not host.
self-hosted-runner:
  labels: @@LABELS@@
"""

_PR = """\
@@MARKER@@
# Pull requests: run the project on the GPU runner, push its runs, and leave the report for
# the comment workflow (gitml-comment.yml). Fork pull requests get a read-only token, so
# this workflow never writes to the pull request itself.
name: gitml pull request
on:
  pull_request:
permissions: {}
concurrency:
  group: gitml-pr-${{ github.event.pull_request.number }}
  cancel-in-progress: true
jobs:
  train:
    name: Run and report
    permissions:
      contents: write  # gitml push: the metadata branch
    # Labels are passed through as given. On a public repository, keep "Require approval for
    # fork pull request workflows" on: a fork's code runs on this runner.
    runs-on: @@RUNNER@@
    steps:
      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8  # v5.0.0
        with:
          fetch-depth: 0  # gitml diff compares with the merge base: it needs the history
          persist-credentials: true  # zizmor: ignore[artipacked] gitml push uses the checkout's token
      - uses: ./.github/actions/gitml-setup  # zizmor: ignore[self-repository] act and GHES read './'
      - name: Run the project
        run: gitml run . -e @@ENTRY@@
      - name: Push runs and artifacts
        # A fork's token is read-only: its runs stay in this job's report.
        if: github.event.pull_request.head.repo.full_name == github.repository
        run: gitml push
      - name: Write the report for the comment workflow
        env:
          PR_NUMBER: ${{ github.event.pull_request.number }}
        run: |
          mkdir -p gitml-report
          printf '%s\\n' "$PR_NUMBER" > gitml-report/pr-number
          gitml ci comment --output gitml-report/report.md@@FAIL_ON@@
      - uses: actions/upload-artifact@330a01c490aca151604b8cf639adc76d48f6c5d4  # v5.0.0
        with:
          name: gitml-report
          path: gitml-report/
          retention-days: 5
@@GATES@@"""

_GATES = """\
      - name: Metric gates
        # Exit status 3 when a gate is crossed: make this job a required check to block merging.
        run: |
          gitml diff -q@@FAIL_ON@@
"""

_COMMENT = """\
@@MARKER@@
# Posts the report of gitml-pr.yml as one sticky comment. A separate workflow because a
# fork's pull_request token cannot write comments; workflow_run runs with this repository's
# token. It checks out and runs no code of the pull request: the report is data (the number
# is checked to be digits, the body is only posted).
name: gitml comment
on:
  workflow_run:  # zizmor: ignore[dangerous-triggers] runs no PR code, reads the report as data
    workflows: [gitml pull request]
    types: [completed]
permissions: {}
concurrency:
  group: gitml-comment-${{ github.event.workflow_run.head_sha }}
  cancel-in-progress: false
jobs:
  comment:
    name: Post the report
    if: github.event.workflow_run.event == 'pull_request'
    runs-on: ubuntu-latest
    permissions:
      actions: read  # download the report of the other run
      pull-requests: write  # the comment
    steps:
      - uses: actions/download-artifact@018cc2cf5baa6db3ef3c5f8a56943fffe632ef53  # v6.0.0
        with:
          name: gitml-report
          path: gitml-report
          run-id: ${{ github.event.workflow_run.id }}
          github-token: ${{ github.token }}
      - uses: actions/setup-python@e797f83bcb11b83ae66e0230d6156d7c80228e7c  # v6.0.0
        with:
          python-version: "3.11"
      - name: Install gitml
        env:
          GITML_SPEC: @@SPEC@@
        run: python -m pip install "$GITML_SPEC"
      - name: Post or update the comment
        env:
          GITHUB_TOKEN: ${{ github.token }}
        run: |
          pr="$(head -c 20 gitml-report/pr-number | tr -d '[:space:]')"
          case "$pr" in ''|*[!0-9]*) echo "the report names no pull request number" >&2; exit 1;; esac
          gitml ci comment --pr "$pr" --body-file gitml-report/report.md
"""

_MAIN = """\
@@MARKER@@
# The default branch: the same run as on pull requests, its runs pushed@@REGISTER_NOTE@@.
name: gitml main
on:
  push:
    branches: [@@BRANCH@@]
permissions: {}
concurrency:
  group: gitml-main
  cancel-in-progress: false
jobs:
  train:
    name: Run on the default branch
    permissions:
      contents: write  # gitml push: the metadata branch@@REGISTER_PERM@@
    runs-on: @@RUNNER@@
    steps:
      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8  # v5.0.0
        with:
          fetch-depth: 0
          persist-credentials: true  # zizmor: ignore[artipacked] gitml push uses the checkout's token
      - uses: ./.github/actions/gitml-setup  # zizmor: ignore[self-repository] act and GHES read './'
      - name: Run the project
        # The output goes outside the checkout: a new file in it would mark the run dirty.
        run: |
          set -o pipefail
          gitml run . -e @@ENTRY@@ | tee "$RUNNER_TEMP/gitml-run.txt"
      - name: Push runs and artifacts
        run: gitml push
@@REGISTER@@"""

_REGISTER = """\
      - name: Register the model when the gates pass
        run: |
          # The last line of `gitml run` is "<run id> <status>".
          run_id="$(tail -n 1 "$RUNNER_TEMP/gitml-run.txt" | cut -d' ' -f1)"
          if gitml diff -q HEAD^ HEAD@@FAIL_ON@@; then
            gitml models register "runs:/$run_id/@@ARTIFACT@@" @@MODEL@@
            # Tags pushed with GITHUB_TOKEN start no workflow: dispatch the deploy workflow
            # (the gh CLI ships on GitHub's runners; install it on a self-hosted one).
            gitml push
            gh workflow run gitml-deploy.yml -f model=@@MODEL@@
          fi
        env:
          GH_TOKEN: ${{ github.token }}
"""

_DEPLOY = """\
@@MARKER@@
# Registry tags: deploy what is *current* in the stage (not the tag that fired), skip when it
# is already deployed, one deployment at a time, and record each on the metadata branch.
name: gitml deploy
on:
  push:
    tags:
      # GitHub's filters: '*' does not match '/', so model names with '/' need '**';
      # '!' is literal past a pattern's first character (gto's "name#stage!#3" matches).
      - "**@v*"  # register and deregister (name@v1.2.0, name@v1.2.0!)
      - "**@deprecated"
      - "**#**"  # stage assignment and unassignment (name#prod#3, name#prod!#4)
  # Tags pushed with GITHUB_TOKEN start no workflow: a promotion made inside CI must run
  # `gh workflow run gitml-deploy.yml -f model=NAME` itself.
  workflow_dispatch:
    inputs:
      model:
        description: Registered model name
        required: true
permissions: {}
concurrency:
  group: gitml-deploy  # one deployment at a time; the newest waiting one resolves "current"
  cancel-in-progress: false
jobs:
  deploy:
    name: Deploy what is current
    permissions:
      contents: write  # gitml push: the deployment record on the metadata branch
    runs-on: @@DEPLOY_RUNNER@@
    environment: @@ENVIRONMENT@@
    steps:
      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8  # v5.0.0
        with:
          fetch-depth: 0
          persist-credentials: true  # zizmor: ignore[artipacked] gitml push records the deployment
      # gitml-setup re-fetches tags: checkout may have turned the annotated tag lightweight.
      - uses: ./.github/actions/gitml-setup  # zizmor: ignore[self-repository] act and GHES read './'
      - name: Resolve what is current
        id: plan
        env:
          FIRED_TAG: ${{ github.event_name == 'push' && github.ref_name || '' }}
          MODEL: ${{ inputs.model }}
        run: |
          gitml deployments plan --tag "$FIRED_TAG" --model "$MODEL" --stage @@STAGE@@ \\
            --environment @@ENVIRONMENT@@ >> "$GITHUB_OUTPUT"
      - name: Deploy
        if: steps.plan.outputs.deploy == 'true'
        env:
          GITML_MODEL: ${{ steps.plan.outputs.model }}
          GITML_VERSION: ${{ steps.plan.outputs.version }}
          GITML_MODEL_URI: ${{ steps.plan.outputs.model_uri }}
          GITML_STAGE: @@STAGE@@
          GITML_ENVIRONMENT: @@ENVIRONMENT@@
        run: |
@@DEPLOY_COMMAND@@
      - name: Record the deployment
        if: steps.plan.outputs.deploy == 'true'
        env:
          GITML_MODEL: ${{ steps.plan.outputs.model }}
          GITML_VERSION: ${{ steps.plan.outputs.version }}
        run: |
          gitml deployments record --model "$GITML_MODEL" --version "$GITML_VERSION" \\
            --stage @@STAGE@@ --environment @@ENVIRONMENT@@
          gitml push
"""


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"@@{key}@@", value)
    assert "@@" not in template, template
    return template


def github_files(o: InitOptions) -> dict[str, str]:
    """{path: text} of every file `gitml ci init github` writes."""
    fail_on = "".join(f" --fail-on {q_shell(g)}" for g in o.fail_on)
    values = {
        "MARKER": marker_line(o),
        "SPEC": q_yaml(o.gitml_spec),
        "RUNNER": "[" + ", ".join(q_yaml(label) for label in o.gpu_runner) + "]",
        "DEPLOY_RUNNER": q_yaml(o.deploy_runner),
        "LABELS": "[" + ", ".join(q_yaml(x) for x in (*o.gpu_runner, o.deploy_runner)) + "]",
        "ENTRY": q_shell(o.entry_point),
        "BRANCH": q_yaml(o.branch),
        "STAGE": q_shell(o.stage),
        "ENVIRONMENT": q_shell(o.environment),
        "DEPLOY_COMMAND": run_block(o.deploy_command, 10),
        "FAIL_ON": fail_on,
        "MODEL": q_shell(o.register or ""),
        "ARTIFACT": o.artifact_path,
    }
    values["GATES"] = _fill(_GATES, values) if o.fail_on else ""
    if o.register:
        values["REGISTER"] = _fill(_REGISTER, values)
        values["REGISTER_NOTE"] = ", and the model registered when the gates pass"
        values["REGISTER_PERM"] = "\n      actions: write  # dispatch the deploy workflow"
    else:
        values["REGISTER"] = values["REGISTER_NOTE"] = values["REGISTER_PERM"] = ""
    return {
        ".github/actions/gitml-setup/action.yml": _fill(_SETUP, values),
        ".github/actionlint.yaml": _fill(_ACTIONLINT, values),
        ".github/workflows/gitml-pr.yml": _fill(_PR, values),
        ".github/workflows/gitml-comment.yml": _fill(_COMMENT, values),
        ".github/workflows/gitml-main.yml": _fill(_MAIN, values),
        ".github/workflows/gitml-deploy.yml": _fill(_DEPLOY, values),
    }

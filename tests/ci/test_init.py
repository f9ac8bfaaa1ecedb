"""`gitml ci init`: the generated pipelines pass the ecosystem's own checkers, and files gitml
did not write are never overwritten. The checkers (actionlint, zizmor, check-jsonschema) are
installed by `make tools` in their own venv under .tools/."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from gitml.ci.init import generated_files, init_pipelines
from gitml.ci.options import InitOptions
from gitml.exceptions import InvalidParameterValue, ResourceAlreadyExists
from tests.conftest import git, run_cli

TOOLS = Path(__file__).resolve().parents[2] / ".tools/venv/bin"

OPTION_SETS = {
    "defaults": InitOptions(),
    "everything": InitOptions(
        gpu_runner=("self-hosted", "linux", "a100 x8"),
        entry_point="train",
        deploy_command='kubectl set image deploy/model model="registry.example/model:$GITML_VERSION"\necho "deployed $GITML_MODEL_URI"',
        stage="staging",
        environment="eu-west/staging",
        fail_on=("accuracy<-0.01", "val_loss>+5%", "latency_ms>250"),
        register="team/cnn",
    ),
}


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.skip(f"{name} is not installed (make tools installs it under .tools/)")
    return str(path)


def checked(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd[:2])}:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(params=sorted(OPTION_SETS))
def generated(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, InitOptions]:
    root = tmp_path / "project"
    root.mkdir()
    git("init", "-q", "-b", "main", cwd=root)
    options = OPTION_SETS[request.param]
    init_pipelines(root, "github", options)
    init_pipelines(root, "gitlab", options)
    return root, options


def test_actionlint(generated: tuple[Path, InitOptions]) -> None:
    root, _ = generated
    checked([tool("actionlint"), "-no-color"], root)  # reads .github/actionlint.yaml: the labels


def test_zizmor_offline(generated: tuple[Path, InitOptions]) -> None:
    root, _ = generated
    checked([tool("zizmor"), "--offline", "--no-progress", ".github/"], root)


def test_zizmor_pedantic_finds_nothing_above_help(generated: tuple[Path, InitOptions]) -> None:
    root, _ = generated
    checked(
        [
            tool("zizmor"),
            "--offline",
            "--no-progress",
            "--persona",
            "pedantic",
            "--min-severity",
            "low",
            ".github/",
        ],
        root,
    )


def test_check_jsonschema_vendor_schemas(generated: tuple[Path, InitOptions]) -> None:
    root, _ = generated
    cj = tool("check-jsonschema")
    checked(
        [
            cj,
            "--builtin-schema",
            "vendor.github-workflows",
            *sorted(str(p) for p in (root / ".github/workflows").glob("*.yml")),
        ],
        root,
    )
    checked(
        [
            cj,
            "--builtin-schema",
            "vendor.github-actions",
            str(root / ".github/actions/gitml-setup/action.yml"),
        ],
        root,
    )
    checked([cj, "--builtin-schema", "vendor.gitlab-ci", str(root / ".gitlab-ci.yml")], root)


def test_every_file_is_plain_yaml_with_the_marker(generated: tuple[Path, InitOptions]) -> None:
    root, options = generated
    for platform in ("github", "gitlab"):
        for rel in generated_files(platform, options):
            text = (root / rel).read_text()
            assert text.startswith("# gitml:generated")
            yaml.safe_load(text)


def test_user_values_land_as_data(generated: tuple[Path, InitOptions]) -> None:
    root, options = generated
    pr = yaml.safe_load((root / ".github/workflows/gitml-pr.yml").read_text())
    assert pr["jobs"]["train"]["runs-on"] == list(options.gpu_runner)
    gl = yaml.safe_load((root / ".gitlab-ci.yml").read_text())
    assert gl["gitml-train"]["tags"] == list(options.gpu_runner)
    assert gl["stages"] == ["data-validation", "training", "evaluation", "deployment"]
    assert gl["gitml-deploy"]["resource_group"] == "gitml-deploy"
    deploy = yaml.safe_load((root / ".github/workflows/gitml-deploy.yml").read_text())
    assert deploy["concurrency"] == {"group": "gitml-deploy", "cancel-in-progress": False}
    run = next(s["run"] for s in deploy["jobs"]["deploy"]["steps"] if s.get("name") == "Deploy")
    assert run.strip() == options.deploy_command.strip()


# GitHub's filter patterns (docs: "Filter pattern cheat sheet"): '*' matches any characters
# but '/', '**' any characters, '?' zero or one of the preceding character, '+' one or more,
# '[...]' a class; '!' negates only at a pattern's start, and the last pattern that matches
# a ref decides. `act` ignores these filters (it runs whatever event it is given), so they
# are checked here.
def github_filter(pattern: str) -> re.Pattern[str]:
    if pattern.startswith("!"):
        pattern = pattern[1:]
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] in "?+":
            out, i = out + pattern[i], i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"^{out}$")


def github_triggers(patterns: list[str], ref: str) -> bool:
    """Whether a push of `ref` starts a workflow with these `tags:` (or `branches:`) filters."""
    decided = False
    for pattern in patterns:
        if github_filter(pattern).match(ref):
            decided = not pattern.startswith("!")
    return decided


# The cheat sheet's kinds of example: (patterns, refs that match, refs that do not).
@pytest.mark.parametrize(
    ("patterns", "matching", "other"),
    [
        (["feature/*"], ["feature/my-branch", "feature/x"], ["feature/a/b", "feature", "main"]),
        (["feature/**"], ["feature/a/b/c", "feature/x"], ["features/x", "main"]),
        (["*"], ["main", "releases"], ["releases/10", "team/cnn@v1"]),
        (["**"], ["main", "releases/10", "team/cnn#prod#3"], []),
        (["*feature"], ["mona-feature", "feature", "ver-10-feature"], ["feature-x"]),
        (["v2*"], ["v2", "v2.0", "v2.9"], ["v1.0", "x/v2"]),
        (["v[12].[0-9]+.[0-9]+"], ["v1.10.1", "v2.0.0"], ["v3.0.0", "v1.x.0", "v1..0"]),
        (["v1.?"], ["v1.", "v1"], ["v1.0"]),
        (["**", "!releases/**-alpha"], ["releases/1-beta", "main"], ["releases/1/2-alpha"]),
        (["releases/**", "!releases/**-alpha", "releases/**-alpha-ok"],
         ["releases/1-alpha-ok"], ["releases/1-alpha"]),
        (["**#**"], ["cnn#prod!#4", "a/b#p#1"], ["cnn@v1"]),  # '!' past the start: literal
    ],
)  # fmt: skip
def test_the_filter_emulation_follows_githubs_rules(
    patterns: list[str], matching: list[str], other: list[str]
) -> None:
    for ref in matching:
        assert github_triggers(patterns, ref), (patterns, ref)
    for ref in other:
        assert not github_triggers(patterns, ref), (patterns, ref)


REGISTRY_TAGS = [
    "cnn@v1.0.0", "team/cnn@v1.2.0", "cnn@v1.0.0!", "cnn@deprecated", "team/vision/cnn@deprecated",
    "cnn#production#3", "team/cnn#production#12", "cnn#production!#4", "team/cnn#staging!#5", "cnn#prod",
]  # fmt: skip
OTHER_TAGS = ["v1.0.0", "release-2", "team/release", "cnn-1.0"]


def test_github_tag_filters_match_every_registry_tag_and_no_other() -> None:
    on = yaml.safe_load(
        generated_files("github", InitOptions())[".github/workflows/gitml-deploy.yml"]
    )[True]
    patterns = on["push"]["tags"]
    for name in REGISTRY_TAGS:
        assert github_triggers(patterns, name), name
    for name in OTHER_TAGS:
        assert not github_triggers(patterns, name), name
    assert "branches" not in on["push"]  # a tags-only filter: branch pushes start nothing
    assert not github_filter("*@v*").match("team/cnn@v1.2.0")  # why '**': '*' stops at '/'


def test_gitlab_tag_rule_matches_every_registry_tag_and_no_other() -> None:
    gl = yaml.safe_load(generated_files("gitlab", InitOptions())[".gitlab-ci.yml"])
    rule = gl["gitml-deploy"]["rules"][0]["if"]
    regex = re.search(r"=~ /(.*)/$", rule).group(1)  # type: ignore[union-attr]
    for name in REGISTRY_TAGS:
        assert re.search(regex, name), name
    for name in OTHER_TAGS:
        assert not re.search(regex, name), name


def test_refuses_a_file_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / ".github/workflows").mkdir(parents=True)
    mine = tmp_path / ".github/workflows/gitml-pr.yml"
    mine.write_text("name: my own\non: push\n")
    with pytest.raises(
        ResourceAlreadyExists, match="gitml-pr.yml exists and was not written by gitml"
    ):
        init_pipelines(tmp_path, "github", InitOptions())
    assert mine.read_text() == "name: my own\non: push\n"
    assert not (tmp_path / ".github/workflows/gitml-main.yml").exists()  # nothing half-written
    result = init_pipelines(tmp_path, "github", InitOptions(), force=True)
    assert dict(result.files)[".github/workflows/gitml-pr.yml"] == "updated"


def test_rerun_updates_its_own_files_and_keeps_a_users_actionlint_config(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github/actionlint.yaml").write_text("self-hosted-runner:\n  labels: [mine]\n")
    first = dict(init_pipelines(tmp_path, "github", InitOptions()).files)
    assert first[".github/actionlint.yaml"] == "kept (yours)"
    assert set(dict(init_pipelines(tmp_path, "github", InitOptions()).files).values()) <= {
        "unchanged",
        "kept (yours)",
    }
    again = dict(init_pipelines(tmp_path, "github", InitOptions(entry_point="train")).files)
    assert again[".github/workflows/gitml-pr.yml"] == "updated"


@pytest.mark.parametrize(
    "bad",
    [
        {"entry_point": "main; rm -rf /"},
        {"stage": "prod\nx"},
        {"environment": "-rf"},
        {"gpu_runner": ()},
        {"gpu_runner": ("gpu\n",)},
        {"entry_point": "main\n"},
        {"fail_on": ("accuracy",)},
        {"fail_on": ("my #metric<0.1",)},
        {"register": "bad name"},
        {"deploy_command": "  "},
    ],
)
def test_bad_options_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterValue):
        InitOptions(**bad)  # type: ignore[arg-type]


def test_cli_init_explains_what_to_set(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys,
        "ci",
        "init",
        "github",
        "--gpu-runner",
        "self-hosted,gpu,a100",
        "--fail-on",
        "accuracy<-0.01",
    )
    assert (code, err) == (0, "")
    assert "created  .github/workflows/gitml-pr.yml" in out
    assert "self-hosted runner with the labels [self-hosted, gpu, a100]" in out
    code, out, err = run_cli(capsys, "ci", "init", "gitlab")
    assert code == 0 and "GITLAB_TOKEN" in out and (repo / ".gitlab-ci.yml").exists()
    (repo / ".gitlab-ci.yml").write_text("stages: [mine]\n")
    code, out, err = run_cli(capsys, "ci", "init", "gitlab")
    assert code == 1 and err.count("\n") == 1 and "--force" in err

"""`gitml models register|list|show|history|transition-stage|alias|current`: exit codes, stdout, stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.registry._util import model_runner


@pytest.fixture
def registered(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    new_model_run = model_runner(tmp_path)
    runs = [new_model_run({"accuracy": 0.8}), new_model_run({"accuracy": 0.9})]
    capsys.readouterr()
    for r in runs:
        code, out, err = run_cli(capsys, "models", "register", f"runs:/{r}/model", "iris")
        assert code == 0, err
    assert out == "Registered iris version 2 (tag iris@v2.0.0)\n"
    return runs


def test_promote_and_current(registered: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys,
        "models",
        "transition-stage",
        "--model-name",
        "iris",
        "--version",
        "1",
        "--stage",
        "Production",
    )
    assert (code, out, err) == (0, "iris version 1 is now in stage Production\n", "")
    code, out, _ = run_cli(capsys, "models", "current", "iris", "--stage", "production")
    assert (code, out) == (0, f"1 runs:/{registered[0]}/model\n")
    code, out, _ = run_cli(capsys, "models", "current", "iris", "--stage", "Production", "--json")
    data = json.loads(out)
    assert (data["version"], data["source"], data["model_uri"], data["git_tag"]) == (
        1,
        f"runs:/{registered[0]}/model",
        "models:/iris/1",
        "iris@v1.0.0",
    )
    code, out, err = run_cli(capsys, "models", "current", "iris", "--stage", "staging")
    assert (code, out) == (1, "") and err == "Error: model iris has no version in stage staging\n"
    code, out, _ = run_cli(capsys, "models", "current", "iris")
    assert out == f"2 runs:/{registered[1]}/model\n"


def test_alias_list_show_history(registered: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "models", "alias", "iris", "champion", "2")[:2] == (
        0,
        "iris@champion -> version 2\n",
    )
    code, out, _ = run_cli(capsys, "models", "current", "iris", "--alias", "champion", "--json")
    assert json.loads(out)["version"] == 2
    code, out, _ = run_cli(capsys, "models", "list")
    assert code == 0 and out.splitlines()[2].split() == ["iris", "2", "-", "-", "champion=2"]
    code, out, _ = run_cli(capsys, "models", "list", "--json")
    assert [m["name"] for m in json.loads(out)] == ["iris"]
    code, out, _ = run_cli(capsys, "models", "show", "iris", "--json")
    assert [v["version"] for v in json.loads(out)["versions"]] == [2, 1]
    code, out, _ = run_cli(capsys, "models", "show", "iris")
    assert code == 0 and "champion" in out and "v1.0.0" in out
    code, out, _ = run_cli(capsys, "models", "history", "iris", "--json")
    assert [(e["event"], e["version"], e["stage"]) for e in json.loads(out)] == [
        ("registration", 1, None),
        ("registration", 2, None),
        ("assignment", 2, "champion"),
    ]
    code, out, _ = run_cli(capsys, "models", "history", "iris")
    assert code == 0 and "Test User <test@example.com>" in out and "iris#champion#1" in out
    assert run_cli(capsys, "models", "alias", "iris", "champion", "--delete")[:2] == (
        0,
        "Removed alias champion of iris\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "show", "ghost"], "Error: Registered Model with name=ghost not found\n"),
        (
            ["models", "show", "iris", "--version", "9"],
            "Error: Model Version (name=iris, version=9) not found\n",
        ),
        (
            [
                "models",
                "transition-stage",
                "--model-name",
                "iris",
                "--version",
                "1",
                "--stage",
                "Prod",
            ],
            "Error: invalid stage 'Prod': use one of None, Staging, Production, Archived\n",
        ),
        (["models", "alias", "iris", "bad alias", "1"], "Error: invalid alias 'bad alias'"),
        (
            ["models", "register", "runs:/0123456789abcdef0123456789abcdef/model", "bad@name"],
            "Error: invalid registered model name 'bad@name'",
        ),
    ],
)
def test_errors_are_one_line(
    registered: list[str], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, *args)
    assert code == 1 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_usage_errors(registered: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "models", "alias", "iris", "champion")
    assert code == 2 and "VERSION" in err
    code, _, err = run_cli(capsys, "models", "transition-stage", "--model-name", "iris")
    assert code == 2 and "--version" in err


def test_unreadable_tags_are_warned_about_not_fatal(
    registered: list[str], repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import git

    git("tag", "-a", "iris@v-broken", "-m", "hand-made", cwd=repo)
    git("tag", "iris#prod#9", cwd=repo)  # lightweight
    code, out, err = run_cli(capsys, "models", "show", "iris")
    assert code == 0 and "v2.0.0" in out
    assert err.splitlines() == [
        "warning: skipped tag iris#prod#9: a lightweight tag (GTO reads annotated tags only)",
        "warning: skipped tag iris@v-broken: not in GTO's tag grammar",
    ]
    code, out, err = run_cli(capsys, "models", "list")
    assert code == 0 and len(err.splitlines()) == 2

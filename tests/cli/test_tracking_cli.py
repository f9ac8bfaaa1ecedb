"""The experiments and runs commands: exit codes, stdout and stderr apart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitml as mlflow
from gitml.cli import cli, main


@pytest.fixture
def logged(repo: Path) -> str:
    mlflow.set_experiment("cli-exp")
    with mlflow.start_run(run_name="cli-run") as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("acc", 0.93)
        mlflow.set_tag("team", "x")
    return run.info.run_id


def invoke(*args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, list(args), standalone_mode=False, catch_exceptions=True)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr if hasattr(result, "stderr") else ""


def test_runs_list_show_search(logged: str) -> None:
    code, out, _ = invoke("runs", "list")
    assert code == 0 and "cli-run" in out and "FINISHED" in out and "0.93" in out
    code, out, _ = invoke("runs", "show", logged)
    assert code == 0
    for text in ("cli-run", "FINISHED", "lr", "0.1", "acc", "team", "Commit:"):
        assert text in out
    code, out, _ = invoke("runs", "show", logged, "--json")
    data = json.loads(out)
    assert data["data"]["params"] == {"lr": "0.1"} and data["info"]["run_id"] == logged
    code, out, _ = invoke("runs", "search", "metrics.acc > 0.9", "--json")
    assert [r["info"]["run_id"] for r in json.loads(out)] == [logged]
    code, out, _ = invoke("runs", "search", "metrics.acc > 0.99")
    assert "(none)" in out


def test_experiments_commands(logged: str) -> None:
    code, out, _ = invoke("experiments", "list")
    assert code == 0 and "cli-exp" in out
    code, out, _ = invoke("experiments", "create", "second")
    assert code == 0 and "second" in out
    exp_id = out.strip().split()[-1]
    assert invoke("experiments", "rename", exp_id, "third")[0] == 0
    assert invoke("experiments", "delete", exp_id)[0] == 0
    code, out, _ = invoke("experiments", "list", "--view", "deleted_only", "--json")
    assert [e["name"] for e in json.loads(out)] == ["third"]
    assert invoke("experiments", "restore", exp_id)[0] == 0


def test_runs_delete_restore(logged: str) -> None:
    assert invoke("runs", "delete", logged)[0] == 0
    assert "(none)" in invoke("runs", "list")[1]
    assert logged[:12] in invoke("runs", "list", "--view", "deleted_only")[1]
    assert invoke("runs", "restore", logged)[0] == 0
    assert logged[:12] in invoke("runs", "list")[1]


def test_a_run_is_named_by_the_short_id_runs_list_shows(logged: str) -> None:
    short = logged[:12]  # the Run column of `gitml runs list`
    code, out, _ = invoke("runs", "show", short)
    assert code == 0 and f"Run:         {logged}" in out
    assert invoke("runs", "delete", logged[:6])[1] == f"Deleted run {logged}\n"
    assert invoke("runs", "restore", short)[1] == f"Restored run {logged}\n"
    with mlflow.start_run(run_id=logged):
        mlflow.log_text("hi", "notes.txt")
    code, out, _ = invoke("artifacts", "list", short)
    assert code == 0 and "notes.txt" in out
    code, out, _ = invoke("artifacts", "download", short, "notes.txt")
    assert code == 0 and Path(out.strip()).read_text() == "hi"
    absent = next(p for p in ("0000", "1111") if not logged.startswith(p))
    out = subprocess.run(
        [sys.executable, "-c", "from gitml.cli import main; main()", "runs", "show", absent],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    message = f"no run id starts with '{absent}'"
    assert out.returncode == 1 and message in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "show", "nope"], "invalid run id"),
        (["runs", "show", "0" * 32], "not found"),
        (["runs", "search", "metrics.acc >"], "invalid filter"),
        (["experiments", "create", "cli-exp"], "already exists"),
        (["experiments", "rename", "999", "x"], "no experiment"),
    ],
)
def test_errors_are_one_line_and_non_zero(logged: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("Error: ") and message in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


def test_real_subprocess_outside_a_repo(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gitml", "runs", "list"],
        cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)},
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ") and "git init" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_real_subprocess_with_repo_option(logged: str, repo: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gitml", "-C", str(repo), "runs", "list", "--json"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["info"]["run_id"] == logged


def test_every_command_has_help() -> None:
    import click

    def walk(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
        out = []
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            assert cmd is not None, name
            out.append((name, cmd))
            if isinstance(cmd, click.Group):
                out += walk(cmd, click.Context(cmd, parent=ctx))
        return out

    ctx = click.Context(cli)
    commands = walk(cli, ctx)
    assert len(commands) >= 10
    for name, cmd in commands:
        assert (cmd.help or "").strip(), f"command {name} has no help"


def test_runs_show_summarises_a_project_runs_provenance(repo: Path) -> None:
    from gitml import constants as C

    tags = {
        C.TAG_PROJECT_ENTRY_POINT: "train",
        C.TAG_PROJECT_PATH: "sub",
        C.TAG_PROV_DIFF_SHA256: "ab" * 32,
        C.TAG_PROV_UNTRACKED: "2",
        C.TAG_PROV_DATA_FILES: "3",
        C.TAG_PROV_DATA_SHA256: "cd" * 32,
        C.TAG_PROV_PYTHON: "3.12.1",
        C.TAG_PROV_PACKAGES_SHA256: "ef" * 32,
        C.TAG_PROV_GPU: "H100",
        C.TAG_PROV_CUDA: "12.4",
    }
    with mlflow.start_run() as run:
        mlflow.set_tags(tags)
    code, out, _ = invoke("runs", "show", run.info.run_id)
    assert code == 0
    for text in (
        "train in sub",
        "sha256 abababababab",
        "3 file(s), sha256 cdcdcdcdcdcd",
        "3.12.1, packages sha256 efefefefefef",
        "H100 / 12.4",
    ):
        assert text in out

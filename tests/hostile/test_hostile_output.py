"""Hostile values in output: what an attacker logs (params, tags, run and experiment names,
metric keys) is inert in `gitml diff --md` (a PR comment) and on a terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gitml.escape import markdown_cell, terminal
from tests.hostile._readers import plant, push_branch
from tests.hostile.conftest import World, in_clone

ROOT = Path(__file__).resolve().parents[2]

INJECT = (
    "v1 |\n## Pwned heading\n| forged | row | here | x | y |\n"
    "![tracker](https://evil.example/pixel.png) <img src=https://evil.example/x.png> "
    "[click](javascript:alert(1)) `code` @everyone www.evil.example"
)
ANSI = "\x1b[2J\x1b[1;1H\x1b[31mALL TESTS PASSED\x1b[0m\x07\u202eexe.txt\r"


def gitml_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", "from gitml.cli import main; main()", *args],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def _log(clone: Path, name: str, params: dict[str, str], tags: dict[str, str], **metrics: float) -> str:
    import gitml

    with in_clone(clone):
        with gitml.start_run(run_name=name) as run:
            gitml.log_params(params)
            gitml.set_tags(tags)
            for k, v in metrics.items():
                gitml.log_metric(k, v)
        return str(run.info.run_id)


@pytest.fixture
def runs(world: World) -> tuple[World, str, str]:
    """The attacker's run (hostile param, tag and name) and the victim's own, both on the victim."""
    evil = _log(world.attacker, ANSI, {"p": INJECT, "lr": "0.1"}, {"note": ANSI}, accuracy=0.5)
    world.push(world.attacker)
    world.pull(world.victim)
    mine = _log(world.victim, "mine", {"p": "plain", "lr": "0.2"}, {"note": "ok"}, accuracy=0.75)
    return world, evil, mine


def _cells(line: str) -> list[str]:
    """Cells of a markdown table row, splitting on unescaped pipes only."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_diff_md_cells_are_inert(runs: tuple[World, str, str]) -> None:
    world, evil, mine = runs
    out = gitml_cli("diff", evil, mine, "--md", cwd=world.victim)
    assert out.returncode == 0, out.stderr
    md = out.stdout
    lines = md.splitlines()
    tables = [ln for ln in lines if ln.startswith("|")]
    assert tables, md
    width = len(_cells(tables[0]))
    assert all(len(_cells(ln)) == width for ln in tables), md  # no forged rows or cells
    assert not any(ln.lstrip().startswith("#") for ln in lines)  # no heading
    assert "Pwned heading" in md  # the value is shown, as text
    for raw in (r"!\[", r"<img", r"\]\(", r"`code", r"(?<!\u2060)//evil", r"@everyone", r"www\.evil"):
        assert not re.search(r"(?<!\\)" + raw, md), raw  # only escaped (or joined) forms remain
    assert "\x1b" not in md and "\u202e" not in md


def test_diff_text_and_runs_list_never_print_escape_sequences(runs: tuple[World, str, str]) -> None:
    world, evil, mine = runs
    for args in (("diff", evil, mine), ("runs", "list"), ("runs", "show", evil), ("runs", "search", "params.lr = '0.1'")):
        out = gitml_cli(*args, cwd=world.victim)
        assert out.returncode == 0, (args, out.stderr)
        for bad in ("\x1b", "\x07", "\u202e", "\r"):
            assert bad not in out.stdout, (args, bad)
        assert out.stdout.count("\n") >= 2
    shown = gitml_cli("runs", "show", evil, cwd=world.victim).stdout
    assert "\\e[31mALL TESTS PASSED" in shown  # visible, not interpreted
    # JSON output stays exact (it is for programs, which escape by JSON's own rules)
    data = json.loads(gitml_cli("runs", "show", evil, "--json", cwd=world.victim).stdout)
    assert data["data"]["tags"]["note"] == ANSI


def test_experiment_names_planted_on_the_branch_print_escaped(world: World) -> None:
    world.log_run(world.attacker, acc=1.0)
    world.push(world.attacker)
    plant(
        world.attacker,
        {"experiments/42/meta.yaml": json.dumps(
            {"experiment_id": "42", "name": "x\x1b]0;owned\x07\x1b[2J", "lifecycle_stage": "active"}
        ).encode()},
    )  # fmt: skip
    push_branch(world.attacker)
    world.pull(world.victim)
    out = gitml_cli("experiments", "list", cwd=world.victim)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert "x\\e]0;owned\\x07\\e[2J" in out.stdout


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a|b", "a\\|b"),
        ("line\nbreak", "line break"),
        ("val_loss", "val_loss"),
        ("_em_", "\\_em\\_"),
        ("<b>x</b>", "\\<b\\>x\\</b\\>"),
        ("0.97", "0.97"),
        ("x" * 500, "x" * 199 + "…"),
    ],
)
def test_markdown_cell(value: str, expected: str) -> None:
    assert markdown_cell(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("plain", "plain"), ("\x1b[31m", "\\e[31m"), ("a\nb", "a\\nb"), ("\u202e", "\\u202e"), ("\x9b", "\\x9b"), ("é ü 日本", "é ü 日本")],
)
def test_terminal(value: str, expected: str) -> None:
    assert terminal(value) == expected


def test_models_history_escapes_a_tagger_name(world: World) -> None:
    """Own attack: the tagger name of a registry tag is the attacker's `user.name`, escape codes
    and all; `gitml models history` and `models show` print it."""
    import numpy as np

    import gitml
    from gitml.models.signature import infer_signature
    from tests.conftest import git
    from tests.serving.pymodels import Scaled

    git("config", "user.name", "eve \x1b[2J\x1b[Hadmin\x07", cwd=world.attacker)
    with in_clone(world.attacker):
        with gitml.start_run():
            sig = infer_signature(np.zeros((2, 3)), np.zeros(2))
            info = gitml.pyfunc.log_model("model", python_model=Scaled(1.0), signature=sig)
        gitml.register_model(info.model_uri, "m")
    world.push(world.attacker)
    world.pull(world.victim)
    for args in (("models", "history", "m"), ("models", "show", "m"), ("models", "list")):
        out = gitml_cli(*args, cwd=world.victim)
        assert out.returncode == 0, out.stderr
        assert "\x1b" not in out.stdout and "\x07" not in out.stdout, args
    history = gitml_cli("models", "history", "m", cwd=world.victim).stdout
    assert "eve \\e[2J\\e[Hadmin\\x07" in history  # shown, visibly escaped

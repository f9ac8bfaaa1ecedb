"""Issue #14's bad-input list through the CLI: one `Error:` line, non-zero, nothing on the branch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.projects.test_run import MLPROJECT, TRAIN, branch_tip, project

GOOD = {"MLproject": MLPROJECT, "train.py": TRAIN}
PATHS = """\
entry_points:
  main:
    parameters:
      data: {type: path}
      mode: {type: string, default: fast, choices: [fast, slow]}
      n: {type: int, default: 1, min: 1}
    command: "python train.py --alpha 0 {data} {mode} {n}"
"""


@pytest.mark.parametrize(
    ("files", "args", "match"),
    [
        ({"train.py": TRAIN}, [], "no MLproject"),
        ({**GOOD, "MLproject.yaml": MLPROJECT}, [], "several project files"),
        ({"MLproject": "entry_points:\n  main: [x\n", "train.py": TRAIN}, [], "MLproject:3:1: YAML error"),
        ({"MLproject": "entry_point:\n  main: {command: x}\n"}, [], "did you mean 'entry_points'"),
        (
            {"MLproject": "python_env: a.yaml\ndocker_env: {image: x}\nentry_points: {}\n", "a.yaml": ""},
            [],
            "several environment keys",
        ),
        (GOOD, ["-P", "alpha=x"], "parameter 'alpha' is a float"),
        ({"MLproject": PATHS, "train.py": TRAIN, "d.csv": "1\n"}, ["-P", "data=d.csv", "-P", "n=0.5"], "is an int"),
        ({"MLproject": PATHS, "train.py": TRAIN, "d.csv": "1\n"}, ["-P", "data=d.csv", "-P", "mode=medium"], "fast, slow"),
        ({"MLproject": PATHS, "train.py": TRAIN, "d.csv": "1\n"}, ["-P", "data=d.csv", "-P", "n=0"], ">= 1"),
        ({"MLproject": PATHS, "train.py": TRAIN}, ["-P", "data=missing.csv"], "missing.csv"),
        ({"MLproject": PATHS, "train.py": TRAIN}, [], "data"),
        (GOOD, ["-P", "alhpa=0.1"], "did you mean 'alpha'"),
        (GOOD, ["-e", "mian"], "did you mean 'main'"),
        (
            {"MLproject": "entry_points:\n  a: {command: x, depends_on: [b]}\n  b: {command: y, depends_on: [a]}\n"},
            ["-e", "a"],
            "depends_on cycle",
        ),
        ({"MLproject": "entry_points:\n  a: {command: x, depends_on: [c]}\n"}, ["-e", "a"], "unknown step 'c'"),
        (
            {**GOOD, "MLproject": "python_env: p.yaml\n" + MLPROJECT, "p.yaml": "python: '3.4.1'\n"},
            ["--env-manager", "virtualenv"],
            "Python 3.4.1 is not installed",
        ),
    ],
)
def test_bad_input_is_one_line_nonzero_and_writes_nothing(
    repo: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], args: list[str], match: str
) -> None:
    project(repo, files)
    code, _, err = run_cli(capsys, "run", ".", *args)
    assert code != 0 and match in err, err
    assert err.startswith("Error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert branch_tip(repo) == ""

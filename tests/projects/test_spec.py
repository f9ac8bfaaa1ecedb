"""MLproject parsing and validation: MLflow's format, strict keys, marks, did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.projects.spec import load_project

GOOD = """\
name: demo
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.1, min: 0, max: 1}
      n: {type: int, default: 3}
      data: path
      where: {type: uri, default: "s3://bucket/x"}
      flag: {type: bool, default: true}
      mode: {type: string, default: fast, choices: [fast, slow]}
    command: "python train.py --alpha {alpha} {data}"
  evaluate:
    depends_on: [main]
    resources: {gpu: 1, cpu: 2, memory: 4Gi}
    command: python eval.py
"""


def write(root: Path, text: str, name: str = "MLproject") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
    (root / "python_env.yaml").write_text("python: '3.11'\n")
    return root


def test_a_full_file_reads(tmp_path: Path) -> None:
    p = load_project(write(tmp_path / "p", GOOD))
    assert p.name == "demo" and p.env_kind == "python_env"
    main = p.entry_points["main"]
    assert main.parameters["alpha"].type == "float" and main.parameters["alpha"].default == 0.1
    assert main.parameters["data"].type == "path" and not main.parameters["data"].has_default
    assert main.parameters["mode"].choices == ("fast", "slow")
    ev = p.entry_points["evaluate"]
    assert ev.depends_on == ("main",) and ev.resources == {"gpu": 1, "cpu": 2, "memory": "4Gi"}


@pytest.mark.parametrize("name", ["MLproject", "MLproject.yaml", "MLproject.yml"])
def test_every_file_name_reads(tmp_path: Path, name: str) -> None:
    assert "main" in load_project(write(tmp_path / "p", GOOD, name)).entry_points


def test_no_file_means_scripts(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "go.sh").write_text("")
    p = load_project(tmp_path)
    assert p.file is None
    assert p.entry_point("train.py").command == "python train.py"
    assert p.entry_point("go.sh").command == "bash go.sh"
    with pytest.raises(ResourceDoesNotExist, match="nope.py"):
        p.entry_point("nope.py")


def test_an_empty_parameters_block_is_fine(tmp_path: Path) -> None:
    p = load_project(
        write(tmp_path / "p", "entry_points:\n  main:\n    parameters:\n    command: python x.py\n")
    )
    assert p.entry_points["main"].parameters == {}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "entry_point:\n  main:\n    command: x\n",
            r"MLproject:1:1: unknown key 'entry_point' in the project \(did you mean 'entry_points'\?\)",
        ),
        (
            "entry_points:\n  main:\n    comand: x\n",
            r"MLproject:3:5: unknown key 'comand'.*did you mean 'command'",
        ),
        (
            "entry_points:\n  main:\n    command: x\n    parameters:\n      a: {type: flaot}\n",
            r"MLproject:5:17: .*unknown type 'flaot' \(did you mean 'float'\?\)",
        ),
        (
            "entry_points:\n  main:\n    command: x\n    parameters:\n      a: {type: int, dflt: 1}\n",
            r"MLproject:5:22: unknown key 'dflt'",
        ),
        ("entry_points:\n  main:\n    command: [x\n", r"MLproject:4:1: YAML error"),
        (
            "python_env: python_env.yaml\nconda_env: c.yaml\nentry_points: {}\n",
            r"MLproject:2:12: several environment keys",
        ),
        ("conda_env: missing.yaml\n", r"conda_env file missing.yaml not found"),
        ("entry_points:\n  main:\n    parameters: {}\n", r"entry point 'main' needs a command"),
        (
            "entry_points:\n  main:\n    command: x\n    parameters:\n      n: {type: int, default: 0.5}\n",
            r"MLproject:5:31: default: parameter 'n' is an int",
        ),
        (
            "entry_points:\n  a:\n    command: x\n    depends_on: [b]\n",
            r"depends on unknown step 'b'",
        ),
        (
            "entry_points:\n  a:\n    command: x\n    resources: {gpus: 1}\n",
            r"unknown key 'gpus'.*did you mean 'gpu'",
        ),
        ("a: &x [1]\nb: *x\n", r"MLproject:1:4: YAML anchors and aliases"),
        ("- 1\n- 2\n", r"must be a mapping"),
        (
            "entry_points:\n  main:\n    command: x\n    shell: yes please\n",
            r"shell must be true or false",
        ),
    ],
)
def test_bad_files_say_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, match: str
) -> None:
    root = write(tmp_path / "p", text)
    monkeypatch.chdir(root)
    with pytest.raises(InvalidParameterValue, match=match):
        load_project(root)


def test_two_project_files_are_refused(tmp_path: Path) -> None:
    root = write(tmp_path / "p", GOOD)
    (root / "MLproject.yaml").write_text(GOOD)
    with pytest.raises(InvalidParameterValue, match="several project files"):
        load_project(root)


def test_lenient_turns_unknown_keys_into_warnings(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p", "entry_points:\n  main:\n    comand: y\n    command: x\n    owner: me\n"
    )
    p = load_project(root, lenient=True)
    assert len(p.warnings) == 2 and "did you mean 'command'" in p.warnings[0]


def test_unknown_entry_point_suggests(tmp_path: Path) -> None:
    p = load_project(write(tmp_path / "p", GOOD))
    with pytest.raises(
        ResourceDoesNotExist, match="no entry point 'evaluat' \\(did you mean 'evaluate'\\?\\)"
    ):
        p.entry_point("evaluat")


def test_the_schema_accepts_what_the_loader_accepts(tmp_path: Path) -> None:
    import json

    import jsonschema
    import yaml

    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "schemas" / "mlproject.schema.json").read_text()
    )
    jsonschema.validate(yaml.safe_load(GOOD), schema)
    for bad in (
        {"entry_point": {}},
        {"entry_points": {"m": {"comand": "x"}}},
        {"python_env": "a", "conda_env": "b"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


@pytest.mark.parametrize(
    "text",
    [
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 2\n  hash: md5\n  path: a.csv\n",
        "outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  size: 20\n  nfiles: 3\n  hash: md5\n  path: a.csv\n",
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  path: a.csv\n  cache: false\n",
        "outs:\n  - md5: '0123456789abcdef0123456789abcdef'\n    path: 'a.csv'\n",
        "# a comment\nouts:\n- path: a.csv\n  md5: 0123456789abcdef0123456789abcdef\n",
    ],
)
def test_dvc_pointers_read_fast_or_through_yaml(tmp_path: Path, text: str) -> None:
    from gitml.projects.dvcdata import _outs_hashes, _read_pointer

    (tmp_path / "a.csv.dvc").write_text(text)
    out: dict[str, str] = {}
    _outs_hashes(_read_pointer(tmp_path / "a.csv.dvc")["outs"], "sub", out)
    assert out == {
        "sub/a.csv": "0123456789abcdef0123456789abcdef" + (".dir" if ".dir" in text else "")
    }


@pytest.mark.parametrize(
    "text",
    [
        "outs:\n- md5: zz\n  path: a\n",
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  path: ../../etc/passwd\n",
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  path: /etc/passwd\n",
        "a: &x 1\nb: *x\n",
        "[1, 2",
    ],
)
def test_hostile_pointers_give_no_hash(tmp_path: Path, text: str) -> None:
    from gitml.projects.dvcdata import _outs_hashes, _read_pointer

    (tmp_path / "a.dvc").write_text(text)
    data = _read_pointer(tmp_path / "a.dvc")
    out: dict[str, str] = {}
    if isinstance(data, dict):
        _outs_hashes(data.get("outs"), "", out)
    assert out == {}

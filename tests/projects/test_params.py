"""Parameters checked before anything runs, and commands built without a shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.projects.params import build_argv, resolve_params, shell_syntax
from gitml.projects.spec import EntryPoint, Parameter

EP = EntryPoint(
    name="main",
    command="python train.py --alpha {alpha} -n={n} --msg {msg}",
    parameters={
        "alpha": Parameter("alpha", "float", 0.5, min=0, max=1),
        "n": Parameter("n", "int", 3),
        "msg": Parameter("msg", "string"),
        "mode": Parameter("mode", "string", "fast", choices=("fast", "slow")),
        "on": Parameter("on", "bool", False),
        "where": Parameter("where", "uri", "s3://b/k"),
    },
)


@pytest.mark.parametrize(
    "value",
    [
        "a; rm -rf /",
        "$(touch pwned)",
        "`touch pwned`",
        "line1\nline2",
        'it\'s "quoted"',
        "--flag",
        "*",
        "{alpha}",
    ],
)
def test_a_value_stays_one_literal_argument(value: str, tmp_path: Path) -> None:
    final, extra = resolve_params(EP, {"msg": value}, tmp_path)
    argv = build_argv(EP, final, extra)
    assert argv[argv.index("--msg") + 1] == value
    assert argv[:2] == ["python", "train.py"] and len(argv) == 7


def test_defaults_extras_and_logged_values(tmp_path: Path) -> None:
    final, extra = resolve_params(EP, {"msg": "m", "alpha": "0.50", "lr": "1e-3"}, tmp_path)
    assert final == {
        "alpha": "0.50",
        "n": "3",
        "msg": "m",
        "mode": "fast",
        "on": "false",
        "where": "s3://b/k",
    }
    assert extra == {"lr": "1e-3"}
    assert build_argv(EP, final, extra)[-2:] == ["--lr", "1e-3"]


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({"msg": "x", "n": "0.5"}, "parameter 'n' is an int; got '0.5'"),
        ({"msg": "x", "alpha": "high"}, "parameter 'alpha' is a float"),
        ({"msg": "x", "alpha": "2"}, "must be <= 1"),
        ({"msg": "x", "alpha": "-1"}, "must be >= 0"),
        ({"msg": "x", "mode": "medium"}, "must be one of fast, slow"),
        ({"msg": "x", "on": "maybe"}, "is a bool"),
        ({"msg": "x", "where": "no-scheme"}, "is a uri"),
        ({"msg": "x", "alhpa": "0.1"}, r"no parameter 'alhpa' \(did you mean 'alpha'\?\)"),
        ({}, "needs parameter\\(s\\) msg"),
        ({"msg": "x", "bad name": "1"}, "not a valid option name"),
        ({"msg": "x\x00"}, "NUL"),
    ],
)
def test_bad_values_are_refused(given: dict[str, str], match: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterValue, match=match):
        resolve_params(EP, given, tmp_path)


def test_path_parameters_must_exist_and_become_absolute(tmp_path: Path) -> None:
    ep = EntryPoint("main", "python x.py {data}", {"data": Parameter("data", "path")})
    (tmp_path / "d.csv").write_text("1\n")
    final, _ = resolve_params(ep, {"data": "d.csv"}, tmp_path)
    assert final["data"] == str(tmp_path / "d.csv")
    with pytest.raises(ResourceDoesNotExist, match="no such file or folder: nope.csv"):
        resolve_params(ep, {"data": "nope.csv"}, tmp_path)


@pytest.mark.parametrize(
    ("template", "found"),
    [
        ("python a.py && python b.py", "&"),
        ("python a.py | tee log", "|"),
        ("python a.py > out", ">"),
        ("python a.py; rm x", ";"),
        ("python $HOME/a.py", "$H"),
        ('python "$(pwd)/a.py"', "$("),
        ("python a.py\npython b.py", "newline"),
        ("python `which a`", "`"),
    ],
)
def test_shell_syntax_is_found_and_refused(template: str, found: str) -> None:
    assert shell_syntax(template) == found
    with pytest.raises(InvalidParameterValue, match="shell: true"):
        build_argv(EntryPoint("main", template), {}, {})


@pytest.mark.parametrize(
    "template",
    ["python a.py 'x;y' \"a|b\" '$HOME'", "python a.py \\\n  --x 1", "python a.py --f={n}"],
)
def test_quoted_or_plain_templates_need_no_shell(template: str) -> None:
    assert shell_syntax(template) is None


def test_shell_true_quotes_values(tmp_path: Path) -> None:
    ep = EntryPoint("main", "echo {msg} | cat", {"msg": Parameter("msg")}, shell=True)
    final, extra = resolve_params(ep, {"msg": "$(touch pwned)"}, tmp_path)
    assert build_argv(ep, final, extra) == ["bash", "-c", "echo '$(touch pwned)' | cat"]


def test_an_undeclared_placeholder_is_refused() -> None:
    ep = EntryPoint("main", "python a.py {alpah}", {"alpha": Parameter("alpha", "float", 1.0)})
    with pytest.raises(InvalidParameterValue, match="did you mean 'alpha'"):
        build_argv(ep, {"alpha": "1.0"}, {})

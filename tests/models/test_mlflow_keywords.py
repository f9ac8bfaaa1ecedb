"""MLflow's save_model/log_model keywords on every flavor: code_path, conda_env,
pip_requirements, extra_pip_requirements, metadata, used the way MLflow scripts use them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import gitml
import gitml.pyfunc
import gitml.pytorch
import gitml.sklearn
from gitml.exceptions import InvalidParameterValue
from gitml.models import Model

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
from sklearn.linear_model import LinearRegression  # noqa: E402

from tests.models.pyfuncs import AddN  # noqa: E402

CONDA = {
    "name": "env",
    "channels": ["conda-forge"],
    "dependencies": ["python=3.11", "pip", {"pip": ["requests==2.31.0", "tqdm"]}],
}


def _flavors() -> dict[str, tuple[Any, dict[str, Any]]]:
    X = np.arange(6, dtype=float).reshape(3, 2)
    return {
        "sklearn": (gitml.sklearn, {"sk_model": LinearRegression().fit(X, [1.0, 2.0, 3.0])}),
        "pytorch": (gitml.pytorch, {"pytorch_model": torch.nn.Sequential(torch.nn.Linear(2, 1))}),
        "pyfunc": (gitml.pyfunc, {"python_model": AddN(1)}),
    }


@pytest.mark.parametrize("flavor", ["sklearn", "pytorch", "pyfunc"])
def test_save_model_takes_mlflow_keywords(tmp_path: Path, flavor: str) -> None:
    module, model = _flavors()[flavor]
    helper = tmp_path / "helper.py"
    helper.write_text("X = 1\n")
    env_file = tmp_path / "conda.yaml"
    env_file.write_text(yaml.safe_dump(CONDA))
    meta = module.save_model(path=tmp_path / "a", code_path=[str(helper)], conda_env=str(env_file), metadata={"team": "x"}, **model)
    assert (tmp_path / "a" / "code" / "helper.py").read_text() == "X = 1\n"
    # the conda env's pip list replaces the defaults; bare names are pinned to what is installed
    assert [r.split("==")[0] for r in (tmp_path / "a" / "requirements.txt").read_text().split()] == ["requests", "tqdm"]
    assert "requests==2.31.0" in (tmp_path / "a" / "requirements.txt").read_text()
    assert Model.load(tmp_path / "a").metadata == {"team": "x"} and meta.metadata == {"team": "x"}
    module.save_model(path=tmp_path / "b", conda_env=CONDA, **model)
    assert (tmp_path / "b" / "requirements.txt").read_text() == (tmp_path / "a" / "requirements.txt").read_text()
    module.save_model(path=tmp_path / "c", pip_requirements=["numpy"], **model)
    assert (tmp_path / "c" / "requirements.txt").read_text().startswith("numpy==")
    module.save_model(path=tmp_path / "d", extra_pip_requirements=["tqdm==4.0"], **model)
    assert "tqdm==4.0" in (tmp_path / "d" / "requirements.txt").read_text().split()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"code_path": ["a.py"], "code_paths": ["a.py"]}, "code_paths or code_path"),
        ({"conda_env": CONDA, "pip_requirements": ["x"]}, "conda_env or pip_requirements"),
        ({"conda_env": CONDA, "extra_pip_requirements": ["x"]}, "conda_env or pip_requirements"),
        ({"conda_env": 5}, "conda_env must be a dict"),
        ({"conda_env": "missing-env.yaml"}, "cannot read conda_env"),
    ],
)
def test_conflicting_keywords_are_refused(tmp_path: Path, kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidParameterValue, match=needle):
        gitml.pyfunc.save_model(path=tmp_path / "m", python_model=AddN(1), **kwargs)
    assert not (tmp_path / "m").exists()


def test_log_model_takes_them_too(repo: Path) -> None:
    with gitml.start_run():
        info = gitml.pytorch.log_model(
            torch.nn.Sequential(torch.nn.Linear(2, 1)), "model", conda_env=CONDA, metadata={"k": "v"}
        )
        skinfo = gitml.sklearn.log_model(
            _flavors()["sklearn"][1]["sk_model"], name="sk", extra_pip_requirements=["tqdm"]
        )
    assert gitml.models.get_model_info(info.model_uri).metadata == {"k": "v"}
    assert gitml.pyfunc.load_model(skinfo.model_uri).predict(np.ones((1, 2))).shape == (1,)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("flavor", ["sklearn", "pytorch", "pyfunc"])
def test_every_model_folder_has_mlflow_environment_files(tmp_path: Path, flavor: str) -> None:
    import platform

    module, model = _flavors()[flavor]
    module.save_model(path=tmp_path / "m", **model)
    folder = tmp_path / "m"
    requirements = (folder / "requirements.txt").read_text().split()
    conda = _yaml(folder / "conda.yaml")
    assert list(conda) == ["name", "channels", "dependencies"] and conda["channels"] == ["conda-forge"]
    python, pip, pip_deps = conda["dependencies"]
    assert python == f"python={platform.python_version()}" and pip.startswith("pip<=")
    assert pip_deps == {"pip": requirements} and requirements[0].startswith("gitml")
    env = _yaml(folder / "python_env.yaml")
    assert env["python"] == platform.python_version() and env["dependencies"] == ["-r requirements.txt"]
    assert [b.split("==")[0] for b in env["build_dependencies"]] == ["pip", "setuptools", "wheel"]
    mlmodel = _yaml(folder / "MLmodel")
    assert mlmodel["flavors"]["python_function"]["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}


def test_a_users_conda_env_is_kept_and_agrees_with_requirements(tmp_path: Path) -> None:
    env = {**CONDA, "prefix": "/home/someone/envs/env", "variables": {"OMP_NUM_THREADS": "1"}}
    gitml.pyfunc.save_model(path=tmp_path / "m", python_model=AddN(1), conda_env=env)
    requirements = (tmp_path / "m" / "requirements.txt").read_text().split()
    conda = _yaml(tmp_path / "m" / "conda.yaml")
    assert conda == {
        "name": "env",
        "channels": ["conda-forge"],
        "dependencies": ["python=3.11", "pip", {"pip": requirements}],
        "variables": {"OMP_NUM_THREADS": "1"},
    }  # the machine's prefix is left out; the pip list is requirements.txt's, pinned
    assert requirements[0] == "requests==2.31.0" and requirements[1].startswith("tqdm==")
    assert gitml.pyfunc.load_model(tmp_path / "m").predict({"x": [1]}) == [2]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"dependencies": "numpy"}, "dependencies must be a list"),
        ({"dependencies": [{"pip": "x"}]}, "the pip dependencies must be a list"),
        ({"dependencies": [{"conda": ["x"]}]}, r"may only be \{pip"),
        ({"dependencies": ["numpy\n--index-url x"]}, "one-line string"),
        ({"dependencies": [["nested"]]}, "one-line string"),
        ({"channels": "conda-forge"}, "channels must be a list"),
        ({"dependencies": ["x"] * 10_001}, "at most 10000"),
        ({"name": "x", "build": ["sh"]}, "unknown key"),
        ({"variables": ["A=1"]}, "variables must be a mapping"),
    ],
)
def test_a_bad_conda_env_is_refused(tmp_path: Path, env: Any, needle: str) -> None:
    with pytest.raises(InvalidParameterValue, match=needle):
        gitml.pyfunc.save_model(path=tmp_path / "m", python_model=AddN(1), conda_env=env)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: &x [1]\nb: *x\n", "anchors or aliases"),
        ("dependencies: [unclosed\n", "does not parse"),
        ("- just\n- a list\n", "must be a dict"),
        ("x" * ((1 << 20) + 1), "larger than"),
    ],
)
def test_a_bad_conda_env_file_is_refused(tmp_path: Path, text: str, needle: str) -> None:
    file = tmp_path / "env.yaml"
    file.write_text(text)
    with pytest.raises(InvalidParameterValue, match=needle):
        gitml.pyfunc.save_model(path=tmp_path / "m", python_model=AddN(1), conda_env=str(file))
    assert not (tmp_path / "m").exists()

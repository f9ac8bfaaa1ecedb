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

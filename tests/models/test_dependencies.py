"""get_model_dependencies (mlflow.pyfunc): a model's requirements.txt or conda.yaml as a local
path, for local, runs:/ and models:/ models, valid after the call."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import gitml
import gitml.pyfunc
from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from tests.models.pyfuncs import AddN

CONDA = {"name": "env", "dependencies": ["python=3.11", "pip", {"pip": ["requests==2.31.0", "tqdm"]}]}


def test_a_local_model_gives_its_own_files(tmp_path: Path) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1), pip_requirements=["numpy==2.0.0"])
    pip = gitml.pyfunc.get_model_dependencies(str(tmp_path / "m"))
    assert Path(pip) == (tmp_path / "m" / "requirements.txt").resolve()
    assert "numpy==2.0.0" in Path(pip).read_text().splitlines()
    conda = gitml.pyfunc.get_model_dependencies(tmp_path / "m", format="conda")
    assert Path(conda).name == "conda.yaml"
    assert "dependencies" in yaml.safe_load(Path(conda).read_text())


def test_logged_and_registered_models_are_fetched_to_a_lasting_path(repo: Path) -> None:
    with gitml.start_run():
        info = gitml.pyfunc.log_model(
            name="model", python_model=AddN(1), pip_requirements=["tqdm==4.66.0"], registered_model_name="deps"
        )
    for uri in (info.model_uri, "models:/deps/1"):
        pip = Path(gitml.pyfunc.get_model_dependencies(uri))
        assert not pip.is_relative_to(repo)  # a copy of its own, outside the repository
        assert "tqdm==4.66.0" in pip.read_text().splitlines()
        assert Path(gitml.pyfunc.get_model_dependencies(uri, "conda")).is_file()


def test_without_requirements_txt_pip_comes_from_conda_yaml(tmp_path: Path) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    (tmp_path / "m" / "requirements.txt").unlink()
    (tmp_path / "m" / "conda.yaml").write_text(yaml.safe_dump(CONDA))  # as an older model may have it
    pip = Path(gitml.pyfunc.get_model_dependencies(tmp_path / "m"))
    assert pip.name == "requirements.txt" and pip.parent != tmp_path / "m"
    assert pip.read_text().splitlines() == ["requests==2.31.0", "tqdm"]


@pytest.mark.parametrize("fmt", ["pipenv", "PIP", ""])
def test_an_unknown_format_is_refused(tmp_path: Path, fmt: str) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    with pytest.raises(InvalidParameterValue, match="Illegal format argument"):
        gitml.pyfunc.get_model_dependencies(tmp_path / "m", format=fmt)


def test_a_model_with_neither_file_or_no_model(tmp_path: Path) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    (tmp_path / "m" / "requirements.txt").unlink()
    (tmp_path / "m" / "conda.yaml").unlink()
    with pytest.raises(ResourceDoesNotExist, match="has no requirements.txt"):
        gitml.pyfunc.get_model_dependencies(tmp_path / "m")
    with pytest.raises(ResourceDoesNotExist):
        gitml.pyfunc.get_model_dependencies(tmp_path / "nothing")

"""The flavor registry: a flavor is one folder with a SPEC plus one registration, and everything
else (pyfunc loading, the `gitml.<face>` modules, model images, the docs) follows from it."""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import gitml
from gitml.exceptions import GitMLError, InvalidParameterValue
from gitml.models import flavors as registry

ROOT = Path(__file__).resolve().parents[2]

_TOY_INIT = '''
"""A toy flavor: a number that multiplies its input."""
from gitml.models.flavors import FlavorSpec

SPEC = FlavorSpec(
    name="toy",
    implementation=f"{__name__}.flavor",
    faces={"toy": "`gitml.toy`: save, log and load toy models."},
    log_args=("toy_model", "artifact_path"),
    log_doc="Log a toy model to the active run.",
    extra="toy",
    requirements=("toy-runtime>=1.0",),
)
'''

_TOY_FLAVOR = '''
"""The toy flavor's code: the factor in factor.json, scored as input * factor."""
import json
import platform
from pathlib import Path

from gitml.models.folder import finish_model, new_model_dir
from gitml.models.model import PYFUNC_FLAVOR, Model
from gitml.models.uri import temporary_model_dir
from {pkg} import SPEC

FLAVOR_NAME = SPEC.name


def save_model(toy_model, path, mlflow_model=None, **_):
    with new_model_dir(path) as model_dir:
        meta = mlflow_model or Model()
        (model_dir / "factor.json").write_text(json.dumps(toy_model))
        meta.add_flavor(FLAVOR_NAME, data="factor.json")
        meta.add_flavor(PYFUNC_FLAVOR, loader_module=SPEC.loader_module, data="factor.json",
                        python_version=platform.python_version())
        finish_model(meta, model_dir, signature=None, input_example=None, metadata=None,
                     requirements=[], pip_requirements=None, extra_pip_requirements=None)
    return meta


def load_model(model_uri, dst_path=None):
    with temporary_model_dir(model_uri, dst_path) as (local, _):
        return json.loads((Path(local) / "factor.json").read_text())


class _Predictor:
    def __init__(self, factor):
        self.raw_model = factor

    def predict(self, data, params=None):
        return [x * self.raw_model for x in data]


def load_pyfunc(model_dir, meta, **_):
    return _Predictor(json.loads((Path(model_dir) / "factor.json").read_text()))
'''


def _write_toy(root: Path, package: str) -> None:
    folder = root / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(textwrap.dedent(_TOY_INIT))
    (folder / "flavor.py").write_text(textwrap.dedent(_TOY_FLAVOR).replace("{pkg}", package))


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A flavor written in a temporary folder (outside gitml) and registered with one call."""
    package = "toyflavor_registry_test"
    _write_toy(tmp_path / "src", package)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    registry.register(package)  # the one registration
    try:
        yield package
    finally:
        registry.unregister(package)
        for name in [m for m in sys.modules if m == "gitml.toy" or m.startswith(package)]:
            del sys.modules[name]
        gitml.__dict__.pop("toy", None)


def test_a_folder_and_one_registration_make_a_flavor(toy: str, repo: Path) -> None:
    import gitml.pyfunc
    import gitml.toy  # the face, built from the spec

    assert gitml.toy.__doc__ == "`gitml.toy`: save, log and load toy models."
    assert gitml.toy.__all__ == ["FLAVOR_NAME", "autolog", "load_model", "log_model", "save_model"]
    assert list(inspect.signature(gitml.toy.log_model).parameters)[:2] == ["toy_model", "artifact_path"]
    assert "toy" in dir(gitml)

    info = gitml.toy.log_model(3, "m")
    assert gitml.toy.load_model(info.model_uri) == 3
    loaded = gitml.pyfunc.load_model(info.model_uri)  # pyfunc loading reads the registry
    assert loaded.predict([1, 2]) == [3, 6]
    assert loaded.loader_module == "gitml.toy"


def test_the_model_image_installs_what_the_flavor_declares(toy: str, tmp_path: Path) -> None:
    import gitml.toy
    from gitml.deploy.dockerfile import _requirements, model_extras

    gitml.toy.save_model(2, tmp_path / "model")
    assert model_extras(tmp_path / "model") == ["serve", "toy"]
    assert "toy-runtime>=1.0" in _requirements(tmp_path / "model").splitlines()


def test_an_unregistered_flavor_is_not_loaded(toy: str, tmp_path: Path) -> None:
    import gitml.pyfunc
    import gitml.toy

    gitml.toy.save_model(2, tmp_path / "model")
    registry.unregister(toy)
    with pytest.raises(InvalidParameterValue, match="unknown model flavor loader 'gitml.toy'"):
        gitml.pyfunc.load_model(tmp_path / "model")
    registry.register(toy)


def test_a_flavor_may_not_take_a_face_or_a_module_already_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    for package, face in (("clash_face_test", "pytorch"), ("clash_module_test", "models")):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(
            "from gitml.models.flavors import FlavorSpec\n"
            f"SPEC = FlavorSpec(name={package!r}, implementation='x', faces={{{face!r}: 'doc'}})\n"
        )
        with pytest.raises(InvalidParameterValue):
            registry.register(package)
    with pytest.raises(InvalidParameterValue, match="declares no SPEC"):
        registry.register("json")
    with pytest.raises(InvalidParameterValue, match="built-in"):
        registry.unregister("gitml.models.flavors.pytorch")


def test_every_built_in_face_is_the_registry_s() -> None:
    for spec in registry.flavors():
        for face, doc in spec.faces.items():
            module = importlib.import_module(f"gitml.{face}")
            assert module.__doc__ == doc
            assert sorted(module.__all__) == sorted({*spec.exports, *spec.logs, "autolog", "log_model"})
            assert getattr(gitml, face) is module
    keras, tensorflow = (importlib.import_module(f"gitml.{f}") for f in ("keras", "tensorflow"))
    assert tensorflow.log_model is keras.log_model
    assert registry.by_loader_module("gitml.pyfunc") is registry.by_face("pyfunc")


def test_every_face_accepts_mlflow_s_autolog_and_logs_nothing(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`mlflow.sklearn.autolog()` at the top of an MLflow script must not stop it."""
    for face in ("sklearn", "pytorch", "keras"):
        module = importlib.import_module(f"gitml.{face}")
        with caplog.at_level("WARNING", logger="gitml"):
            assert module.autolog(log_models=False, disable=False) is None
        assert "autolog() is not supported" in caplog.text
        caplog.clear()
    with gitml.start_run() as run:
        pass
    assert gitml.get_run(run.info.run_id).data.metrics == {}


def test_a_declared_extra_is_one_of_gitml_s() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    for spec in registry.flavors():
        assert spec.extra is None or f"\n{spec.extra} = [" in pyproject, spec.name


def test_the_type_stubs_of_the_faces_are_current() -> None:
    from gitml.faces import write_stubs

    assert write_stubs(check=True) == [], "run `make faces`"


@pytest.mark.parametrize(
    "loader",
    [
        "gitml.tensorflow",  # a face, but an alias: models name the first face only
        "gitml.faces",  # the module that builds faces
        "gitml.models.flavors.pyfunc.flavor",  # an implementation, not a loader_module
        "gitml.models.flavors.pyfunc",
        "toyflavor_registry_test",  # a registered package's own name
        ["gitml.pyfunc"],  # not a string (the MLmodel schema refuses it first)
    ],
)
def test_a_hostile_mlmodel_names_only_registered_loader_modules(loader: object, tmp_path: Path) -> None:
    import yaml

    import gitml.pyfunc
    from tests.models.pyfuncs import AddN

    gitml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    data = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    data["flavors"]["python_function"]["loader_module"] = loader
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(data))
    before = set(sys.modules)
    with pytest.raises(GitMLError, match="unknown model flavor loader|invalid MLmodel"):
        gitml.pyfunc.load_model(tmp_path / "m")
    assert not {m for m in set(sys.modules) - before if "toyflavor" in m or m.endswith(".flavor")}


def test_a_spec_s_logs_must_wrap_an_export() -> None:
    from gitml.models.flavors.spec import FlavorSpec

    with pytest.raises(ValueError, match="log_\\*"):
        FlavorSpec(name="x", implementation="x.flavor", faces={"x": "x"}, logs={"log_y": "save_y"})
    with pytest.raises(ValueError, match="log_\\*"):
        FlavorSpec(name="x", implementation="x.flavor", faces={"x": "x"}, logs={"store": "save_model"})
    ok = FlavorSpec(name="x", implementation="x.flavor", faces={"x": "x"}, logs={"log_twice": "save_model"})
    assert dict(ok.logs) == {"log_twice": "save_model"}

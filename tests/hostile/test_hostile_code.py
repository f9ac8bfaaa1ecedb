"""Hostile model code: a model's shipped `code/` folder is importable only while that model's
classes load, never shadows installed or standard-library modules, and the class names an MLmodel
gives are checked before anything is imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import gitml.pyfunc
from gitml.exceptions import CorruptMetadata
from gitml.models.code import check_import_path, shipped_code

ROOT = Path(__file__).resolve().parents[2]


def _ship(src: Path, marker: Path, module: str = "shipmodel", answer: int = 1) -> list[Path]:
    """A model module plus an attacker's `torch` package and stdlib-named `colorsys.py`,
    each of which writes `marker` if it is ever imported."""
    src.mkdir(parents=True, exist_ok=True)
    plant = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    (src / "torch").mkdir()
    (src / "torch" / "__init__.py").write_text(plant)
    (src / "colorsys.py").write_text(plant)
    (src / "only_in_model.py").write_text("VALUE = 7\n")
    (src / f"{module}.py").write_text(
        textwrap.dedent(
            f"""
            import colorsys
            import only_in_model
            import gitml.pyfunc

            class Model(gitml.pyfunc.PythonModel):
                def predict(self, context, model_input, params=None):
                    return [{answer} + only_in_model.VALUE + int(hasattr(colorsys, "rgb_to_hsv"))]
            """
        )
    )
    return [src / f"{module}.py", src / "torch", src / "colorsys.py", src / "only_in_model.py"]


def _save(tmp_path: Path, name: str, module: str = "shipmodel", answer: int = 1) -> tuple[Path, Path]:
    """Save a pyfunc model whose class lives only in its code/ folder: (model dir, marker)."""
    marker = tmp_path / f"{name}.PWNED"
    src = tmp_path / f"{name}-src"
    paths = _ship(src, marker, module, answer)
    sys.path.append(str(src))  # last, as a user would import their own module
    try:
        mod = __import__(module)
        gitml.pyfunc.save_model(tmp_path / name, python_model=mod.Model(), code_paths=paths)
    finally:
        sys.path.remove(str(src))
        for n in (module, "only_in_model"):
            sys.modules.pop(n, None)
    import shutil

    shutil.rmtree(src)
    return tmp_path / name, marker


def _fresh(script: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)


def test_shipped_torch_and_stdlib_names_never_run(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is the installed package the attack shadows")
    model, marker = _save(tmp_path, "m")
    # A fresh interpreter: load the model, then import torch and colorsys as any later code would.
    done = _fresh(
        textwrap.dedent(
            f"""
            import sys, gitml.pyfunc
            m = gitml.pyfunc.load_model({str(model)!r})
            print(m.predict({{"x": [1]}}))
            import torch, colorsys
            shipped = {str(model)!r}
            assert not torch.__file__.startswith(shipped), torch.__file__
            assert not colorsys.__file__.startswith(shipped), colorsys.__file__
            assert not any(str(p).startswith(shipped) for p in sys.path), sys.path
            try:
                import only_in_model as again
            except ImportError:
                print("gone")
            """
        )
    )
    assert done.returncode == 0, done.stderr
    assert "[9]" in done.stdout  # 1 + 7 + the real colorsys
    assert not marker.exists()


def test_code_folder_is_importable_only_while_loading(tmp_path: Path) -> None:
    model, marker = _save(tmp_path, "m")
    meta_path, path = list(sys.meta_path), list(sys.path)
    try:
        loaded = gitml.pyfunc.load_model(model)
        assert loaded.predict({"x": [1]}) == [9]
        assert sys.meta_path == meta_path and sys.path == path
        shipped = sys.modules["shipmodel"].__file__
        assert shipped is not None and Path(shipped).parent == (model / "code").resolve()
        # a top-level name only the model ships is no longer importable
        sys.modules.pop("only_in_model")
        with pytest.raises(ImportError):
            __import__("only_in_model")
        assert not marker.exists()
    finally:
        for n in ("shipmodel", "only_in_model"):
            sys.modules.pop(n, None)


def test_two_models_shipping_one_module_name_each_get_their_own(tmp_path: Path) -> None:
    a, _ = _save(tmp_path, "a", answer=1)
    b, _ = _save(tmp_path, "b", answer=100)
    try:
        first = gitml.pyfunc.load_model(a)
        second = gitml.pyfunc.load_model(b)
        assert first.predict({"x": [0]}) == [9]
        assert second.predict({"x": [0]}) == [108]
    finally:
        for n in ("shipmodel", "only_in_model"):
            sys.modules.pop(n, None)


@pytest.mark.parametrize(
    "name",
    [
        "this:Model",  # importing it prints to stdout
        "antigravity:Model",  # importing it opens a web browser
        "os:system",
        "subprocess:Popen",
        "os.path:join",
        "../evil:Model",
        "evil:__class__.__init__.__globals__",
        "evil",
        "evil:",
        "import os:Model",
        "a" * 2000 + ":B",
    ],
)
def test_python_model_names_are_checked_before_import(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    model, _ = _save(tmp_path, "m")
    mlmodel = model / "MLmodel"
    meta = yaml.safe_load(mlmodel.read_text())
    meta["flavors"]["python_function"]["python_model"] = name
    mlmodel.write_text(yaml.safe_dump(meta))
    before = set(sys.modules)
    with pytest.raises(CorruptMetadata):
        gitml.pyfunc.load_model(model)
    assert "this" not in set(sys.modules) - before and "antigravity" not in set(sys.modules) - before
    assert "Zen of Python" not in capsys.readouterr().out


def test_check_import_path_accepts_ordinary_names() -> None:
    assert check_import_path("pkg.models:Net") == ("pkg.models", "Net")
    assert check_import_path("m:Outer.Inner") == ("m", "Outer.Inner")


def test_code_folder_outside_the_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(CorruptMetadata, match="outside the model"):
        with shipped_code(tmp_path / "model", "../elsewhere"):
            pass


def test_sklearn_code_folder_is_scoped(tmp_path: Path) -> None:
    sklearn = pytest.importorskip("sklearn", reason="scikit-learn is the flavor under test")
    from sklearn.linear_model import LinearRegression

    import gitml.sklearn

    marker = tmp_path / "PWNED"
    src = tmp_path / "src"
    paths = _ship(src, marker)
    est = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    gitml.sklearn.save_model(est, tmp_path / "sk", code_paths=paths)
    meta_path, path = list(sys.meta_path), list(sys.path)
    loaded = gitml.sklearn.load_model(tmp_path / "sk")
    assert loaded.predict([[2.0]])[0] == pytest.approx(2.0)
    assert sys.meta_path == meta_path and sys.path == path
    assert sklearn is not None and not marker.exists()

"""Source extraction in-process: what the extracted file holds, notebook cells through IPython's
InteractiveShell, and each bad input (no source, names only running code defines)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gitml.pyfunc
from gitml.exceptions import InvalidParameterValue
from gitml.models.source import extract_source, is_installed_module, needs_source

torch = pytest.importorskip("torch")
nn = torch.nn

LIMIT = 3


def _helper(x: Any) -> Any:
    return x * LIMIT


class Scaled(gitml.pyfunc.PythonModel):
    """A PythonModel of this (not installed) test module, using a helper and a constant."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return [_helper(v) + math.floor(0.5) for v in model_input]


def test_installed_or_not() -> None:
    assert is_installed_module("torch.nn") and is_installed_module("json") and is_installed_module("gitml.pyfunc")
    assert not is_installed_module(__name__)  # tests/ is the repository's own code
    assert needs_source(Scaled) and not needs_source(nn.Linear)


def test_extracted_text_holds_the_class_and_what_it_refers_to() -> None:
    text = extract_source([Scaled]).text
    assert "class Scaled" in text and "def _helper" in text and "LIMIT = 3" in text
    assert "import math" in text and "import gitml.pyfunc" in text
    assert "test_installed_or_not" not in text and "importorskip" not in text
    namespace: dict[str, Any] = {"__name__": "extracted"}
    exec(compile(text, "extracted", "exec"), namespace)
    assert namespace["Scaled"]().predict(None, [1, 2]) == [3, 6]


def test_pythonmodel_of_a_test_module_round_trips(tmp_path: Path) -> None:
    gitml.pyfunc.save_model(tmp_path / "m", python_model=Scaled())
    assert gitml.pyfunc.load_model(tmp_path / "m").predict([2]) == [6]


def test_a_name_only_running_code_defines_is_named(tmp_path: Path) -> None:
    width = 5

    class UsesClosure(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, width)

    with pytest.raises(InvalidParameterValue, match=r"refers to 'width', a variable of the function"):
        gitml.pytorch.save_model(UsesClosure(), tmp_path / "a")
    assert not (tmp_path / "a").exists()


SCRIPT_GLOBALS = """
import torch
from torch import nn
data = list(range(7))
n_classes = len(data)
mean = torch.zeros(3)

class Counts(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, n_classes)

class Centred(nn.Module):
    def forward(self, x):
        return x - mean

class Missing(nn.Module):
    def forward(self, x):
        return undefined_name(x)
"""


@pytest.mark.parametrize(
    ("cls", "needle"),
    [
        ("Counts", "refers to 'n_classes', which the running script sets by running code"),
        ("Centred", "refers to 'mean', a Tensor that the running script creates by running code"),
        ("Missing", "refers to 'undefined_name', which is not defined at the top level"),
    ],
)
def test_names_set_by_running_code_are_refused(tmp_path: Path, cls: str, needle: str) -> None:
    file = tmp_path / "script.py"
    file.write_text(SCRIPT_GLOBALS)
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(file)}
    exec(compile(SCRIPT_GLOBALS, str(file), "exec"), namespace)
    with pytest.raises(InvalidParameterValue, match=needle):
        gitml.pytorch.save_model(namespace[cls](), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_python_c_has_no_source(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile("import torch\nclass Net(torch.nn.Module):\n    def forward(self, x): return x\n", "<string>", "exec"), namespace)
    with pytest.raises(InvalidParameterValue, match=r"python -c.*code_paths=\[\.\.\.\].*input_example"):
        gitml.pytorch.save_model(namespace["Net"](), tmp_path / "m")


@pytest.fixture
def shell() -> Any:
    interactive = pytest.importorskip("IPython.core.interactiveshell")
    sh = interactive.InteractiveShell.instance()
    yield sh
    sh.reset()
    interactive.InteractiveShell.clear_instance()


def _cell(shell: Any, code: str) -> None:
    result = shell.run_cell(textwrap.dedent(code), store_history=True)
    result.raise_error()


def test_notebook_cells(shell: Any, tmp_path: Path) -> None:
    _cell(shell, "import torch\nfrom torch import nn\nimport gitml.pyfunc, gitml.pytorch\nHIDDEN = 4\n")
    _cell(shell, "print('a training cell'); rows = [1, 2, 3]\n")
    _cell(
        shell,
        """
        class Net(nn.Module):
            def __init__(self, n: int = 2):
                super().__init__()
                self.n = n
                self.fc = nn.Linear(n, HIDDEN)

            def forward(self, x):
                return self.fc(x).sum(1)
        """,
    )
    _cell(  # a later cell redefines the class: the latest definition is the one shipped
        shell,
        """
        class Net(nn.Module):
            def __init__(self, n: int = 2):
                super().__init__()
                self.n = n
                self.fc = nn.Linear(n, HIDDEN)

            def forward(self, x):
                return self.fc(x).sum(1) * 2
        """,
    )
    _cell(
        shell,
        """
        class Echo(gitml.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return [v * HIDDEN for v in model_input]
        """,
    )
    _cell(shell, f"torch.manual_seed(0); net = Net(); gitml.pytorch.save_model(net, {str(tmp_path / 'net')!r})")
    _cell(shell, "class Loud(Echo):\n    pass\n")  # no method of its own: found in the cells
    _cell(shell, f"gitml.pyfunc.save_model({str(tmp_path / 'echo')!r}, python_model=Loud())")
    expected = shell.user_ns["net"](torch.ones(1, 2)).detach()
    text = next((tmp_path / "net" / "code").glob("*.py")).read_text()
    assert "class Net(nn.Module)" in text and "* 2" in text
    assert "a training cell" not in text and "rows" not in text
    loaded = gitml.pytorch.load_model(tmp_path / "net")
    assert torch.equal(loaded(torch.ones(1, 2)), expected)
    assert gitml.pyfunc.load_model(tmp_path / "echo").predict([1]) == [4]


def test_notebook_cell_using_a_repository_module_by_attribute(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    (tmp_path / "nbhelpers.py").write_text("print('nbhelpers imported')\nK = 5\n\n\ndef times(x):\n    return x * K\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "nbhelpers", raising=False)
    _cell(shell, "import gitml.pyfunc\nimport nbhelpers\n")
    _cell(
        shell,
        """
        class Times(gitml.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return [nbhelpers.times(v) for v in model_input]
        """,
    )
    _cell(shell, f"gitml.pyfunc.save_model({str(tmp_path / 'nb')!r}, python_model=Times())")
    sys.modules.pop("nbhelpers", None)
    helper = (tmp_path / "nb" / "code" / "gitml_src_notebook__nbhelpers.py").read_text()
    assert "def times" in helper and "K = 5" in helper and "print(" not in helper
    assert gitml.pyfunc.load_model(tmp_path / "nb").predict([1, 2]) == [5, 10]
    assert "nbhelpers" not in sys.modules  # the user's module itself is never imported to load


def test_structure_of_a_sequential_with_an_extracted_block(tmp_path: Path) -> None:
    class Block(nn.Module):
        def __init__(self, width: int = 3) -> None:
            super().__init__()
            self.width = width
            self.lin = nn.Linear(width, width)

        def forward(self, x: Any) -> Any:
            return torch.relu(self.lin(x))

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), Block(3), nn.Linear(3, 1)).eval()
    gitml.pytorch.save_model(model, tmp_path / "m")
    loaded = gitml.pytorch.load_model(tmp_path / "m")
    x = torch.randn(5, 2)
    assert torch.equal(loaded(x), model(x))
    assert np.array_equal(gitml.pyfunc.load_model(tmp_path / "m").predict(x.numpy()), model(x).detach().numpy())


def test_a_loaded_model_saves_again_after_its_copy_is_gone(tmp_path: Path) -> None:
    import shutil

    gitml.pyfunc.save_model(tmp_path / "first", python_model=Scaled())
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "first", copy)
    loaded = gitml.pyfunc.load_model(copy).unwrap_python_model()
    shutil.rmtree(copy)  # as a runs:/ download is removed once loaded
    gitml.pyfunc.save_model(tmp_path / "again", python_model=loaded)
    assert (tmp_path / "again" / "code" / "gitml_src_test_source.py").is_file()
    assert gitml.pyfunc.load_model(tmp_path / "again").predict([2]) == [6]


MODEL_OF = """
import gitml.pyfunc
import helpers


class Model(gitml.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [helpers.f(v) for v in model_input]


class Bare(gitml.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [getattr(helpers, "f")(v) for v in model_input]
"""


def _repo_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helpers: str) -> Any:
    """Import `net` and `helpers` from a fresh folder (a repository's own, uninstalled modules)."""
    import importlib
    import sys

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "net.py").write_text(MODEL_OF)
    (tmp_path / "helpers.py").write_text(helpers)
    for name in ("net", "helpers"):
        sys.modules.pop(name, None)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        return importlib.import_module("net")
    finally:
        for name in ("net", "helpers"):
            sys.modules.pop(name, None)


def test_a_module_used_by_attribute_bare_use_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = _repo_modules(tmp_path / "a", monkeypatch, "def f(x):\n    return x + 1\n")
    with pytest.raises(
        InvalidParameterValue,
        match=r"through the name 'helpers' other than as helpers\.<attribute>",
    ):
        gitml.pyfunc.save_model(tmp_path / "bare", python_model=net.Bare())
    assert not (tmp_path / "bare").exists()


def test_a_module_name_only_running_code_sets_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = _repo_modules(tmp_path / "a", monkeypatch, "K = len('abc')\n\n\ndef f(x):\n    return x * K\n")
    with pytest.raises(InvalidParameterValue, match=r"f refers to 'K', which module helpers sets by running code"):
        gitml.pyfunc.save_model(tmp_path / "m", python_model=net.Model())
    assert not (tmp_path / "m").exists()


def test_two_models_shipping_same_named_modules_keep_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _repo_modules(tmp_path / "one", monkeypatch, "def f(x):\n    return x + 1\n")
    gitml.pyfunc.save_model(tmp_path / "m1", python_model=one.Model())
    two = _repo_modules(tmp_path / "two", monkeypatch, "K = 10\n\n\ndef f(x):\n    return x * K\n")
    gitml.pyfunc.save_model(tmp_path / "m2", python_model=two.Model())
    helper_file = tmp_path / "m2" / "code" / "gitml_src_net__helpers.py"
    assert "K = 10" in helper_file.read_text()
    # alternately loaded in one process: each model imports its own `helpers`, never the other's
    for _ in range(2):
        assert gitml.pyfunc.load_model(tmp_path / "m1").predict([1, 2]) == [2, 3]
        assert gitml.pyfunc.load_model(tmp_path / "m2").predict([1, 2]) == [10, 20]
    # a loaded model saves again (its helper module re-extracted) after its folder is gone
    import shutil

    loaded = gitml.pyfunc.load_model(tmp_path / "m2")
    shutil.rmtree(tmp_path / "m2")
    gitml.pyfunc.save_model(tmp_path / "m3", python_model=loaded.unwrap_python_model())
    assert sorted(p.name for p in (tmp_path / "m3" / "code").glob("*.py")) == [
        "gitml_src_net.py",
        "gitml_src_net__helpers.py",
    ]
    assert gitml.pyfunc.load_model(tmp_path / "m3").predict([3]) == [30]

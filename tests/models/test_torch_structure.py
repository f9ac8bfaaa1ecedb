"""Standard torch containers and layers saved as a recorded structure and rebuilt exactly;
TorchScript archives; tampered structure records and shipped sources."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import gitml.pyfunc
import gitml.pytorch
from gitml.exceptions import GitMLError, InvalidParameterValue

torch = pytest.importorskip("torch")
nn = torch.nn


def _same(model: Any, loaded: Any, x: Any) -> None:
    model.eval()
    with torch.no_grad():
        expected, got = model(x), loaded(x)
    if isinstance(expected, tuple):
        expected, got = expected[0], got[0]
    assert torch.equal(expected, got)


class Pick(nn.Module):
    """The first output of an RNN (a tuple) for a Sequential."""

    def forward(self, x: Any) -> Any:
        return x[0]


CASES = {
    "mlp": (lambda: nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1)), (5, 3)),
    "cnn": (
        lambda: nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
            nn.Conv2d(4, 2, kernel_size=(1, 3), stride=(1, 2), padding="valid"), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.LayerNorm(2, eps=1e-3), nn.GELU(approximate="tanh"), nn.Softmax(dim=1),
        ),
        (2, 3, 8, 8),
    ),  # fmt: skip
    "lstm": (lambda: nn.Sequential(nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True), Pick()), (2, 5, 4)),
    "gru": (lambda: nn.GRU(4, 3, batch_first=True), (2, 5, 4)),
    "named": (lambda: nn.Sequential(OrderedDict(emb=nn.Embedding(10, 4, padding_idx=0), out=nn.Linear(4, 2))), None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_structure_round_trip_is_exact(tmp_path: Path, name: str) -> None:
    build, shape = CASES[name]
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randint(0, 10, (3, 5)) if shape is None else torch.randn(*shape)
    meta = gitml.pytorch.save_model(model, tmp_path / "m")
    conf = meta.flavors["pytorch"]
    assert conf["model_structure"] == "data/structure.json" and conf["exported_program"] is None
    loaded = gitml.pytorch.load_model(tmp_path / "m")
    assert repr(loaded) == repr(model)
    _same(model, loaded, x)


def test_module_list_and_dict(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.ModuleList([nn.Linear(2, 2), nn.ModuleDict({"a": nn.Tanh(), "b": nn.Linear(2, 1)})])
    gitml.pytorch.save_model(model, tmp_path / "m")
    loaded = gitml.pytorch.load_model(tmp_path / "m")
    assert repr(loaded) == repr(model)
    x = torch.randn(3, 2)
    assert torch.equal(loaded[1]["b"](loaded[0](x)), model[1]["b"](model[0](x)))


def test_pyfunc_of_a_sequential(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)).eval()
    x = np.random.default_rng(0).random((4, 3), dtype=np.float32)
    gitml.pytorch.save_model(model, tmp_path / "m", input_example=x[:2])
    out = gitml.pyfunc.load_model(tmp_path / "m").predict(x)
    assert np.array_equal(out, model(torch.from_numpy(x)).detach().numpy())


def test_a_layer_whose_arguments_cannot_be_recovered_is_named(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.TransformerEncoderLayer(4, 2, dim_feedforward=8))
    with pytest.raises(InvalidParameterValue, match=r"layer .1. \(TransformerEncoderLayer.*init_kwargs.*input_example"):
        gitml.pytorch.save_model(model, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    example = np.zeros((2, 3, 4), np.float32)
    meta = gitml.pytorch.save_model(model.eval(), tmp_path / "b", input_example=example)
    assert meta.flavors["pytorch"]["exported_program"]


def test_torchscript_archive(tmp_path: Path) -> None:
    import warnings

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(nn.Sequential(nn.Linear(3, 4), nn.Tanh()).eval())
    x = np.ones((2, 3), np.float32)
    meta = gitml.pytorch.save_model(scripted, tmp_path / "m", input_example=x)
    assert meta.flavors["pytorch"]["torchscript"] == "data/model.ts"
    assert meta.signature is not None
    loaded = gitml.pytorch.load_model(tmp_path / "m")
    assert isinstance(loaded, torch.jit.ScriptModule)
    _same(scripted, loaded, torch.from_numpy(x))
    assert np.array_equal(gitml.pyfunc.load_model(tmp_path / "m").predict(x), scripted(torch.from_numpy(x)).detach().numpy())


# ---------------------------------------------------------------- hostile model folders


def _structure_model(tmp_path: Path) -> Path:
    gitml.pytorch.save_model(nn.Sequential(nn.Linear(2, 2)), tmp_path / "m")
    return tmp_path / "m"


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "os.system", "kwargs": {}},
        {"type": "system", "kwargs": {}},
        {"type": "functional", "kwargs": {}},
        {"type": "Linear", "kwargs": {"in_features": 2, "out_features": 2, "__class__": 1}},
        {"type": "Linear", "kwargs": {"in_features": {"nested": "object"}, "out_features": 2}},
        {"class": "os:system"},
        {"class": "subprocess:Popen"},
    ],
)
def test_a_tampered_structure_is_refused(tmp_path: Path, entry: dict[str, Any]) -> None:
    model = _structure_model(tmp_path)
    (model / "data" / "structure.json").write_text(json.dumps({"type": "Sequential", "children": [["0", entry]]}))
    with pytest.raises(GitMLError):
        gitml.pytorch.load_model(model)


def test_a_deep_structure_is_refused(tmp_path: Path) -> None:
    model = _structure_model(tmp_path)
    entry: dict[str, Any] = {"type": "Linear", "kwargs": {"in_features": 2, "out_features": 2}}
    for _ in range(200):
        entry = {"type": "Sequential", "children": [["0", entry]]}
    (model / "data" / "structure.json").write_text(json.dumps(entry))
    with pytest.raises(GitMLError, match="too deeply"):
        gitml.pytorch.load_model(model)


class Small(nn.Module):
    def __init__(self, n: int = 2) -> None:
        super().__init__()
        self.n = n
        self.fc = nn.Linear(n, 1)

    def forward(self, x: Any) -> Any:
        return self.fc(x)


def test_tampered_shipped_source_runs_only_the_named_module(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    gitml.pytorch.save_model(Small(), tmp_path / "m")
    model = tmp_path / "m"
    shipped = next((model / "code").glob("gitml_src_*.py"))
    # planted beside it: modules that shadow installed ones, never imported in their place
    for name in ("torch.py", "json.py", "numpy.py"):
        (model / "code" / name).write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    loaded = gitml.pytorch.load_model(model)
    assert not marker.exists() and loaded(torch.ones(1, 2)).shape == (1, 1)
    # the MLmodel naming a standard-library function instead of the shipped class is refused
    conf_file = model / "MLmodel"
    conf = yaml.safe_load(conf_file.read_text())
    conf["flavors"]["pytorch"]["model_class"] = "os:system"
    conf_file.write_text(yaml.safe_dump(conf))
    with pytest.raises(GitMLError):
        gitml.pytorch.load_model(model)
    assert not marker.exists()
    assert "class Small" in shipped.read_text()

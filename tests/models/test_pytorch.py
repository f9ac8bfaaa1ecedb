"""PyTorch flavor: the seed's CNN through save, load and pyfunc; safe loading; export fallback."""

from __future__ import annotations

import json
import pickle
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import gitml.pyfunc
import gitml.pytorch
from gitml.exceptions import InvalidParameterValue
from gitml.models import Model, Schema, TensorSpec
from tests.models.cnn import CNN, Wide

Evil = tuple[Callable[[Path], None], Path]


@pytest.fixture(scope="module")
def cnn() -> CNN:
    torch.manual_seed(0)
    return CNN().eval()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32)


def _expected(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


def test_round_trip_gives_identical_outputs(tmp_path: Path, cnn: CNN, images: np.ndarray) -> None:
    gitml.pytorch.save_model(cnn, tmp_path / "m", input_example=images[:2])
    loaded = gitml.pytorch.load_model(tmp_path / "m")
    assert type(loaded).__name__ == "CNN" and not loaded.training
    assert np.array_equal(_expected(loaded, images), _expected(cnn, images))
    pyfunc = gitml.pyfunc.load_model(tmp_path / "m")
    assert np.array_equal(pyfunc.predict(images), _expected(cnn, images))
    # JSON-like input (lists of floats) is parsed as the signature's float32
    assert np.allclose(pyfunc.predict(images.tolist()), _expected(cnn, images), atol=1e-6)


def test_mlmodel_records_class_weights_and_signature(tmp_path: Path, cnn: CNN, images: np.ndarray) -> None:
    meta = gitml.pytorch.save_model(cnn, tmp_path / "m", input_example=images[:1])
    conf = meta.flavors["pytorch"]
    assert conf["model_class"] == "gitml_src_cnn:CNN"  # tests/ is not installed: shipped as source
    assert conf["init_kwargs"] == {"num_classes": 10}
    assert conf["exported_program"] is None
    assert meta.signature is not None
    assert meta.signature.inputs == Schema([TensorSpec("float32", (-1, 3, 32, 32))])
    assert meta.signature.outputs == Schema([TensorSpec("float32", (-1, 10))])
    assert Model.load(tmp_path / "m").signature == meta.signature
    # no pickled module anywhere: only a tensor state dict
    assert torch.load(tmp_path / "m" / "data" / "state_dict.pt", weights_only=True).keys() == cnn.state_dict().keys()


def test_constructor_args_are_kept(tmp_path: Path) -> None:
    model = CNN(num_classes=3)
    gitml.pytorch.save_model(model, tmp_path / "m")
    loaded = gitml.pytorch.load_model(tmp_path / "m")
    assert loaded.fc2.out_features == 3


def test_explicit_init_kwargs(tmp_path: Path) -> None:
    model = Wide(width=7)
    with pytest.raises(InvalidParameterValue, match="init_kwargs"):
        gitml.pytorch.save_model(model, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    gitml.pytorch.save_model(model, tmp_path / "b", init_kwargs={"width": 7})
    loaded = gitml.pytorch.load_model(tmp_path / "b")
    x = torch.randn(3, 4)
    assert torch.equal(loaded(x), model(x))


def test_pyfunc_without_signature_follows_the_network_dtype(tmp_path: Path) -> None:
    model = Wide(width=5)
    gitml.pytorch.save_model(model, tmp_path / "m", init_kwargs={"width": 5})
    out = gitml.pyfunc.load_model(tmp_path / "m").predict(np.ones((2, 4)))  # float64 in
    assert out.dtype == np.float32 and out.shape == (2, 2)
    with pytest.raises(InvalidParameterValue, match="could not score this input"):
        gitml.pyfunc.load_model(tmp_path / "m").predict(np.ones((2, 5)))


def test_wrong_input_is_named(tmp_path: Path, cnn: CNN, images: np.ndarray) -> None:
    gitml.pytorch.save_model(cnn, tmp_path / "m", input_example=images[:1])
    model = gitml.pyfunc.load_model(tmp_path / "m")
    with pytest.raises(InvalidParameterValue, match=r"shape \(1, 3, 28, 28\)"):
        model.predict(np.zeros((1, 3, 28, 28), dtype=np.float32))
    with pytest.raises(InvalidParameterValue, match="float64 cannot be safely cast"):
        model.predict(np.zeros((1, 3, 32, 32)))


def test_device_and_map_location(tmp_path: Path, cnn: CNN) -> None:
    gitml.pytorch.save_model(cnn, tmp_path / "m")
    for loaded in (
        gitml.pytorch.load_model(tmp_path / "m", device="cpu"),
        gitml.pytorch.load_model(tmp_path / "m", map_location=torch.device("cpu")),
    ):
        assert {p.device.type for p in loaded.parameters()} == {"cpu"}
        assert not loaded.training


def test_exported_program_round_trip(tmp_path: Path, cnn: CNN, images: np.ndarray) -> None:
    meta = gitml.pytorch.save_model(cnn, tmp_path / "m", input_example=images[:2], export=True)
    assert meta.flavors["pytorch"]["exported_program"] == "data/model.pt2"
    program = gitml.pytorch.load_model(tmp_path / "m", use_exported=True)
    assert not isinstance(program, CNN)
    assert program.eval() is program  # MLflow habits keep working
    # a batch size other than the example's: the batch dimension is dynamic
    assert np.allclose(_expected(program, images), _expected(cnn, images), atol=1e-5)


def test_class_without_source_falls_back_to_export(tmp_path: Path, images: np.ndarray) -> None:
    def init(self: nn.Module) -> None:
        nn.Module.__init__(self)
        self.fc = nn.Linear(3 * 32 * 32, 2)

    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))  # type: ignore[operator]

    model = type("Local", (nn.Module,), {"__init__": init, "forward": forward})().eval()
    with pytest.raises(InvalidParameterValue, match="cannot find the source of 'Local'.*input_example"):
        gitml.pytorch.save_model(model, tmp_path / "a")
    meta = gitml.pytorch.save_model(model, tmp_path / "b", input_example=images[:2])
    assert meta.flavors["pytorch"]["model_class"] is None
    out = gitml.pyfunc.load_model(tmp_path / "b").predict(images)
    assert np.allclose(out, _expected(model, images), atol=1e-5)


def test_code_paths_ship_the_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "shipped_net.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self, n=3):\n"
        "        super().__init__(); self.n = n; self.fc = torch.nn.Linear(n, 1)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n"
    )
    monkeypatch.syspath_prepend(str(src))
    import shipped_net  # type: ignore[import-not-found]

    gitml.pytorch.save_model(shipped_net.Net(4), tmp_path / "m", code_paths=[src / "shipped_net.py"])
    assert (tmp_path / "m" / "code" / "shipped_net.py").is_file()
    # as in a fresh interpreter without the source folder: the model's own copy is imported
    monkeypatch.delitem(sys.modules, "shipped_net")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(src)])
    loaded = gitml.pytorch.load_model(tmp_path / "m")
    assert loaded.fc.in_features == 4
    shipped = sys.modules["shipped_net"].__file__
    assert shipped is not None and Path(shipped).parent == (tmp_path / "m" / "code").resolve()


def test_malicious_state_dict_is_refused(tmp_path: Path, cnn: CNN, evil: Evil) -> None:
    plant, marker = evil
    gitml.pytorch.save_model(cnn, tmp_path / "m")
    plant(tmp_path / "m" / "data" / "state_dict.pt")
    with pytest.raises(InvalidParameterValue, match="refusing to load state_dict.pt"):
        gitml.pytorch.load_model(tmp_path / "m")
    with pytest.raises(InvalidParameterValue, match="refusing"):
        gitml.pyfunc.load_model(tmp_path / "m")
    assert not marker.exists()
    # the planted file is live: plain unpickling would have run it
    pickle.loads((tmp_path / "m" / "data" / "state_dict.pt").read_bytes())
    assert marker.read_text() == "pwned"


def test_malicious_exported_program_is_refused(tmp_path: Path, cnn: CNN, images: np.ndarray, evil: Evil) -> None:
    plant, marker = evil
    gitml.pytorch.save_model(cnn, tmp_path / "m", input_example=images[:2], export=True)
    plant(tmp_path / "m" / "data" / "model.pt2")
    with pytest.raises(InvalidParameterValue, match="refusing to load model.pt2"):
        gitml.pytorch.load_model(tmp_path / "m", use_exported=True)
    assert not marker.exists()


def test_weights_that_do_not_fit(tmp_path: Path, cnn: CNN) -> None:
    gitml.pytorch.save_model(cnn, tmp_path / "m")
    torch.save(CNN(num_classes=4).state_dict(), tmp_path / "m" / "data" / "state_dict.pt")
    with pytest.raises(InvalidParameterValue, match="do not fit CNN"):
        gitml.pytorch.load_model(tmp_path / "m")


def test_paths_in_mlmodel_cannot_escape(tmp_path: Path, cnn: CNN) -> None:
    from gitml.exceptions import CorruptMetadata

    gitml.pytorch.save_model(cnn, tmp_path / "m")
    data = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    data["flavors"]["pytorch"]["state_dict"] = "../outside.pt"
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(data))
    with pytest.raises(CorruptMetadata, match="outside the model folder"):
        gitml.pytorch.load_model(tmp_path / "m")


def test_not_a_module(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterValue, match="must be a torch.nn.Module"):
        gitml.pytorch.save_model(object(), tmp_path / "m")


def test_missing_torch_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gitml.exceptions import MissingDependency

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependency, match=r"gitml\[torch\]"):
        gitml.pytorch.save_model(object(), tmp_path / "m")


def _rewrite_pt2(path: Path, edit: Callable[[dict[str, bytes]], None]) -> None:
    with zipfile.ZipFile(path) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    edit(files)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def _member(files: dict[str, bytes], suffix: str) -> str:
    return next(n for n in files if n.endswith(suffix))


@pytest.mark.parametrize("attack", ["opaque constant", "pickled weight", "aoti library", "stray pickle"])
def test_crafted_exported_program_runs_nothing(tmp_path: Path, cnn: CNN, images: np.ndarray, evil: Evil, attack: str) -> None:
    """Plain torch.export.load unpickles both of these (torch 2.13); gitml's loader must not."""
    plant, marker = evil
    gitml.pytorch.save_model(cnn, tmp_path / "m", input_example=images[:2], export=True)
    plant(tmp_path / "payload")
    payload = (tmp_path / "payload").read_bytes()

    def edit(files: dict[str, bytes]) -> None:
        if attack == "opaque constant":
            name = _member(files, "_constants_config.json")
            config = json.loads(files[name])
            config["config"]["evil"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True, "tensor_meta": None}
            files[name] = json.dumps(config).encode()
            files[name.rsplit("/", 1)[0] + "/opaque_obj_0"] = payload
        elif attack == "aoti library":
            root = next(iter(files)).split("/", 1)[0]
            files[f"{root}/data/aotinductor/model/model.so"] = b"\x7fELF" + payload
        elif attack == "stray pickle":
            root = next(iter(files)).split("/", 1)[0]
            files[f"{root}/data/sample_inputs/model.pt"] = payload
        else:
            name = _member(files, "_weights_config.json")
            config = json.loads(files[name])
            first = next(iter(config["config"].values()))
            first["use_pickle"] = True
            files[name] = json.dumps(config).encode()
            files[name.rsplit("/", 1)[0] + "/" + first["path_name"]] = payload

    _rewrite_pt2(tmp_path / "m" / "data" / "model.pt2", edit)
    with pytest.raises(InvalidParameterValue, match="refusing to load model.pt2"):
        gitml.pytorch.load_model(tmp_path / "m", use_exported=True)
    assert not marker.exists()


def test_loaded_model_can_be_fine_tuned(tmp_path: Path, cnn: CNN, images: np.ndarray) -> None:
    gitml.pytorch.save_model(cnn, tmp_path / "m")
    loaded = gitml.pytorch.load_model(tmp_path / "m")
    before = loaded.fc2.weight.detach().clone()
    assert isinstance(loaded.fc2.weight, nn.Parameter) and loaded.fc2.weight.requires_grad
    loaded.train()
    loaded(torch.from_numpy(images)).sum().backward()
    torch.optim.SGD(loaded.parameters(), lr=0.1).step()
    assert not torch.equal(loaded.fc2.weight, before)
    # the weights file is mapped copy-on-write: training never writes back to the model
    again = gitml.pytorch.load_model(tmp_path / "m")
    assert torch.equal(again.fc2.weight, before)


class TwoHeads(nn.Module):
    """Returns a tuple: the signature keeps its input and leaves the output open."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.fc(x)
        return y, y.sum(dim=1)


def test_tuple_outputs(tmp_path: Path) -> None:
    meta = gitml.pytorch.save_model(TwoHeads(), tmp_path / "m", input_example=np.ones((2, 4), np.float32))
    assert meta.signature is not None and meta.signature.outputs is None
    assert meta.signature.inputs == Schema([TensorSpec("float32", (-1, 4))])
    first, second = gitml.pyfunc.load_model(tmp_path / "m").predict(np.ones((3, 4), np.float32))
    assert first.shape == (3, 3) and second.shape == (3,)


def test_torch_without_a_safe_weights_only_loader_is_refused(tmp_path: Path, cnn: CNN, monkeypatch: pytest.MonkeyPatch) -> None:
    gitml.pytorch.save_model(cnn, tmp_path / "m")
    monkeypatch.setattr(torch, "__version__", "2.5.1")
    with pytest.raises(InvalidParameterValue, match=r"CVE-2025-32434\): install torch>=2.6"):
        gitml.pytorch.load_model(tmp_path / "m")



def test_scoring_a_tensor_model_does_not_import_pandas(tmp_path: Path, cnn: CNN) -> None:
    # the signature check only asks "is this a DataFrame?" when pandas is loaded (45 MiB)
    import subprocess

    from gitml.models import infer_signature

    x = np.zeros((2, 3, 32, 32), dtype=np.float32)
    gitml.pytorch.save_model(cnn, tmp_path / "m", signature=infer_signature(x))
    script = (
        "import sys, gitml.pyfunc, numpy as np\n"
        f"m = gitml.pyfunc.load_model({str(tmp_path / 'm')!r})\n"
        "print(m.predict(np.zeros((1, 3, 32, 32), dtype=np.float32)).shape)\n"
        "print('pandas' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.split() == ["(1,", "10)", "False"]


def test_state_dict_round_trip_by_path(tmp_path: Path, cnn: CNN, images: np.ndarray) -> None:
    gitml.pytorch.save_state_dict(cnn.state_dict(), tmp_path / "sd")
    assert [p.name for p in (tmp_path / "sd").iterdir()] == ["state_dict.pth"]  # MLflow's file name
    for uri in (tmp_path / "sd", str(tmp_path / "sd" / "state_dict.pth"), f"file://{tmp_path / 'sd'}"):
        loaded = gitml.pytorch.load_state_dict(uri)
        assert loaded.keys() == cnn.state_dict().keys()
        fresh = CNN()
        fresh.load_state_dict(loaded)
        assert np.array_equal(_expected(fresh, images), _expected(cnn, images))
    # a checkpoint dict of plain containers and tensors is a state dict too
    ckpt = {"model": cnn.state_dict(), "epoch": 3, "lr": [0.1, 0.01]}
    gitml.pytorch.save_state_dict(ckpt, tmp_path / "ckpt")
    back = gitml.pytorch.load_state_dict(tmp_path / "ckpt", map_location="cpu")
    assert back["epoch"] == 3 and back["lr"] == [0.1, 0.01]
    assert torch.equal(back["model"]["fc2.weight"], cnn.state_dict()["fc2.weight"])


def test_state_dict_bad_input(tmp_path: Path, cnn: CNN) -> None:
    with pytest.raises(InvalidParameterValue, match="must be a dict"):
        gitml.pytorch.save_state_dict(cnn, tmp_path / "sd")  # the module, not its state dict
    assert not (tmp_path / "sd").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidParameterValue, match="not a folder"):
        gitml.pytorch.save_state_dict(cnn.state_dict(), tmp_path / "file")
    from gitml.exceptions import CorruptMetadata, ResourceDoesNotExist

    with pytest.raises(ResourceDoesNotExist):
        gitml.pytorch.load_state_dict(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorruptMetadata, match="missing"):
        gitml.pytorch.load_state_dict(tmp_path / "empty")


def test_malicious_state_dict_file_is_refused(tmp_path: Path, cnn: CNN, evil: Evil) -> None:
    plant, marker = evil
    gitml.pytorch.save_state_dict(cnn.state_dict(), tmp_path / "sd")
    plant(tmp_path / "sd" / "state_dict.pth")
    with pytest.raises(InvalidParameterValue, match="refusing to load state_dict.pth"):
        gitml.pytorch.load_state_dict(tmp_path / "sd")
    assert not marker.exists()
    # a state_dict.pth that links outside its folder is not followed
    from gitml.exceptions import CorruptMetadata

    outside = tmp_path / "outside.pth"
    torch.save({"w": torch.zeros(1)}, outside)
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "state_dict.pth").symlink_to(outside)
    with pytest.raises(CorruptMetadata, match="outside"):
        gitml.pytorch.load_state_dict(tmp_path / "link")

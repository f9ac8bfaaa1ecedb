"""Models defined where people define them: real scripts (top-level training, no main guard),
`python -m` modules and sibling modules of the repo, loaded and served by other processes from
other working directories, which run the training exactly once (in the script's own run)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.serving.conftest import GITML, child_env, free_port
from tests.serving.conftest import start_server as start_server  # noqa: F401  (fixture)

pytest.importorskip("torch")

# The seed's habits: the network and a helper in the script, training at the top level, a
# sibling module of the repo, and MLflow's log_model call with a registered name.
TRAIN = '''\
"""Train at the top level, as the seed's script does (no main guard)."""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import gitml as mlflow
from layers import Block, SCALE

with open("runs.txt", "a") as f:
    f.write("trained\\n")
HIDDEN = 16


def features(x):
    return F.relu(x) * SCALE


class Net(nn.Module):
    """A script-defined network using a sibling module's block."""

    def __init__(self, n_in: int = 4, n_out: int = 3):
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.fc1 = nn.Linear(n_in, HIDDEN)
        self.block = Block(HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, n_out)

    def forward(self, x):
        return self.fc2(self.block(features(self.fc1(x))))


torch.manual_seed(0)
x = torch.randn(64, 4)
y = (x[:, 0] > 0).long()
model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(5):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
with mlflow.start_run():
    mlflow.pytorch.log_model(model, "model", registered_model_name="net")
model.eval()
np.save("expected.npy", model(torch.ones(2, 4)).detach().numpy())
'''

LAYERS = '''\
"""A module of the user's repository, not an installed package."""
import torch
from torch import nn

SCALE = 2.0
print("layers imported")  # a side effect the extracted source must not carry


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.width = width
        self.lin = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(x))
'''


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=child_env(**env), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    """A repository whose train.py has run once: the registered model `net` version 1."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "-q", "-b", "main", cwd=repo)
    (repo / "train.py").write_text(TRAIN)
    (repo / "layers.py").write_text(LAYERS)
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "train", cwd=repo)
    _run([sys.executable, "train.py"], cwd=repo)
    assert (repo / "runs.txt").read_text() == "trained\n"
    return repo


def test_script_model_is_served_and_predicted_elsewhere_without_training_again(
    trained: Path, tmp_path: Path, start_server: Any
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    expected = np.load(trained / "expected.npy")
    (elsewhere / "input.json").write_text(json.dumps({"inputs": [[1.0] * 4, [1.0] * 4]}))
    proc = _run(
        [*GITML, "models", "predict", "-m", "models:/net/1", "-i", "input.json"],
        cwd=elsewhere,
        GITML_TRACKING_URI=str(trained),
    )
    assert np.allclose(json.loads(proc.stdout)["predictions"], expected, atol=1e-6)
    assert "layers imported" not in proc.stdout + proc.stderr
    # served from the repository itself: its own train.py and layers.py sit in the working
    # directory, and still only the extracted source is imported
    port = free_port()
    server = start_server([*GITML, "models", "serve", "-m", "models:/net/1", "--port", str(port)], port, cwd=trained)
    server.wait(deadline_s=180)  # torch and keras import slowly on a busy machine
    r = httpx.post(f"{server.url}/invocations", json={"inputs": [[1.0] * 4, [1.0] * 4]}, timeout=30)
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["predictions"], expected, atol=1e-6)
    assert (trained / "runs.txt").read_text() == "trained\n"  # the script ran exactly once


def test_extracted_source_holds_only_what_the_class_needs(trained: Path, tmp_path: Path) -> None:
    proc = _run(
        [sys.executable, "-c", "import gitml.pytorch as p; print(p.load_model('models:/net/1').__class__.__module__)"],
        cwd=tmp_path,
        GITML_TRACKING_URI=str(trained),
    )
    module = proc.stdout.strip().splitlines()[-1]
    assert module == "gitml_src_train"
    dst = tmp_path / "dl"
    _run(
        [sys.executable, "-c", f"import gitml.artifacts as a; a.download_artifacts(artifact_uri='models:/net/1', dst_path={str(dst)!r})"],
        cwd=tmp_path,
        GITML_TRACKING_URI=str(trained),
    )
    source = next(dst.rglob("gitml_src_train.py")).read_text()
    for needed in ("class Net", "class Block", "def features", "HIDDEN = 16", "SCALE = 2.0", "from torch import nn"):
        assert needed in source
    for never in ("runs.txt", "manual_seed", "log_model", "print(", "import gitml", "np.save"):
        assert never not in source
    compile(source, "extracted", "exec")  # a plain, readable Python file


PKG_TRAIN = '''\
import torch
from torch import nn

import gitml
from .parts import make_head

with open("runs.txt", "a") as f:
    f.write("trained\\n")


class Tiny(gitml.pyfunc.PythonModel):
    def __init__(self, k: float = 2.0):
        self.k = k

    def predict(self, context, model_input, params=None):
        return [make_head(v, self.k) for v in model_input["x"]]


gitml.pyfunc.save_model("pymodel", python_model=Tiny(3.0))


def build():
    class Local(nn.Module):
        def __init__(self, n: int = 2):
            super().__init__()
            self.n = n
            self.lin = nn.Linear(n, 1)

        def forward(self, x):
            return self.lin(x)

    return Local()


torch.manual_seed(0)
local = build()
gitml.pytorch.save_model(local, "localmodel")
torch.save(local(torch.ones(1, 2)).detach(), "local_expected.pt")
'''

PKG_PARTS = '''\
def make_head(value, k):
    return value * k + OFFSET


OFFSET = 1
'''


def test_python_m_module_and_a_class_inside_a_function(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "pkg").mkdir(parents=True)
    (work / "pkg" / "__init__.py").write_text("")
    (work / "pkg" / "train.py").write_text(PKG_TRAIN)
    (work / "pkg" / "parts.py").write_text(PKG_PARTS)
    _run([sys.executable, "-m", "pkg.train"], cwd=work)
    assert (work / "runs.txt").read_text() == "trained\n"
    assert "gitml_src_train:Tiny" in (work / "pymodel" / "MLmodel").read_text()
    other = tmp_path / "other"
    other.mkdir()
    check = textwrap.dedent(
        f"""
        import torch, gitml.pyfunc, gitml.pytorch
        m = gitml.pyfunc.load_model({str(work / "pymodel")!r})
        print(m.predict({{"x": [1, 2]}}))
        local = gitml.pytorch.load_model({str(work / "localmodel")!r})
        assert torch.equal(local(torch.ones(1, 2)), torch.load({str(work / "local_expected.pt")!r}))
        print(type(local).__name__)
        """
    )
    proc = _run([sys.executable, "-c", check], cwd=other)
    assert proc.stdout.split() == ["[4.0,", "7.0]", "Local"]
    assert (work / "runs.txt").read_text() == "trained\n"


# A script whose network reads its repository's modules by attribute (`import layers` ...
# `layers.Block`, `import parts.util as u` ... `u.act`), each module with side effects of its own.
ATTR_TRAIN = """\
import numpy as np
import torch
from torch import nn

import gitml as mlflow
import layers
import parts.util as u

with open("side.txt", "a") as f:
    f.write("trained\\n")
HIDDEN = 8


class Net(nn.Module):
    def __init__(self, n_in: int = 4):
        super().__init__()
        self.fc = nn.Linear(n_in, HIDDEN)
        self.block = layers.Block(HIDDEN)
        self.out = nn.Linear(HIDDEN, 2)

    def forward(self, x):
        return self.out(u.act(self.block(self.fc(x))) * layers.SCALE)


torch.manual_seed(0)
model = Net()
with mlflow.start_run():
    mlflow.pytorch.log_model(model, "model", registered_model_name="attrnet")
model.eval()
np.save("expected.npy", model(torch.ones(2, 4)).detach().numpy())
"""

ATTR_LAYERS = """\
import torch
from torch import nn

with open("side.txt", "a") as f:
    f.write("layers\\n")
SCALE = 2.0


def unused_helper():
    return "never shipped"


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.lin = nn.Linear(width, width)

    def forward(self, x):
        return torch.tanh(self.lin(x))
"""

ATTR_UTIL = """\
import torch

import parts.consts

with open("side.txt", "a") as f:
    f.write("util\\n")


def act(x):
    return torch.relu(x) + parts.consts.SHIFT
"""


def test_repository_modules_used_by_attribute_ship_their_definitions(
    tmp_path: Path, start_server: Any
) -> None:
    repo = tmp_path / "repo"
    (repo / "parts").mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=repo)
    (repo / "train.py").write_text(ATTR_TRAIN)
    (repo / "layers.py").write_text(ATTR_LAYERS)
    (repo / "parts" / "__init__.py").write_text("")
    (repo / "parts" / "util.py").write_text(ATTR_UTIL)
    (repo / "parts" / "consts.py").write_text(
        'with open("side.txt", "a") as f:\n    f.write("consts\\n")\nSHIFT = 0.5\n'
    )
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "train", cwd=repo)
    _run([sys.executable, "train.py"], cwd=repo)
    once = "layers\nconsts\nutil\ntrained\n"
    assert (repo / "side.txt").read_text() == once
    expected = np.load(repo / "expected.npy")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "input.json").write_text(json.dumps({"inputs": [[1.0] * 4, [1.0] * 4]}))
    proc = _run(
        [*GITML, "models", "predict", "-m", "models:/attrnet/1", "-i", "input.json"],
        cwd=elsewhere,
        GITML_TRACKING_URI=str(repo),
    )
    assert np.allclose(json.loads(proc.stdout)["predictions"], expected, atol=1e-6)
    dst = elsewhere / "dl"
    check = textwrap.dedent(
        f"""
        import torch, gitml.artifacts, gitml.pyfunc
        gitml.artifacts.download_artifacts(artifact_uri="models:/attrnet/1", dst_path={str(dst)!r})
        m = gitml.pyfunc.load_model("models:/attrnet/1")
        print(m.predict(torch.ones(2, 4).numpy()).tolist())
        """
    )
    proc = _run([sys.executable, "-c", check], cwd=elsewhere, GITML_TRACKING_URI=str(repo))
    assert np.allclose(json.loads(proc.stdout.strip().splitlines()[-1]), expected, atol=1e-6)
    code = {p.name: p.read_text() for p in dst.rglob("gitml_src_*.py")}
    assert set(code) == {
        "gitml_src_train.py",
        "gitml_src_train__layers.py",
        "gitml_src_train__parts_util.py",
        "gitml_src_train__parts.py",
        "gitml_src_train__parts_consts.py",
    }
    main = code["gitml_src_train.py"]
    assert (
        "import gitml_src_train__layers as layers" in main
        and "import gitml_src_train__parts_util as u" in main
    )
    assert "layers.Block(HIDDEN)" in main  # the user's code, as written
    assert (
        "class Block" in code["gitml_src_train__layers.py"]
        and "SCALE = 2.0" in code["gitml_src_train__layers.py"]
    )
    assert "unused_helper" not in code["gitml_src_train__layers.py"]
    assert "SHIFT = 0.5" in code["gitml_src_train__parts_consts.py"]
    assert not any("side.txt" in text for text in code.values())  # no module's top-level statements

    # served from the repository itself, where the real layers.py and parts/ sit on the path
    port = free_port()
    server = start_server(
        [*GITML, "models", "serve", "-m", "models:/attrnet/1", "--port", str(port)], port, cwd=repo
    )
    server.wait(deadline_s=180)
    r = httpx.post(f"{server.url}/invocations", json={"inputs": [[1.0] * 4, [1.0] * 4]}, timeout=30)
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["predictions"], expected, atol=1e-6)
    assert (repo / "side.txt").read_text() == once  # the script and each module ran exactly once

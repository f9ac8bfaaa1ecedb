"""Benchmark: log_model and load_model of PyTorch models, gitml beside MLflow, in one run.

Usage: python bench/bench_models.py [--repeats N] [--big-mb 100] [--skip-mlflow]

Models: the seed's CNN (about 2 MB of weights) and a plain MLP of about `--big-mb` MB,
both logged with an input example. gitml logs into a fresh Git repository (log_model +
flush, so its commit is counted); MLflow logs into a SQLite tracking store and a local
artifact folder in a temporary directory. Loads are from `runs:/` URIs (download + load)
and from a local copy. MLflow 3's default PyTorch format is a torch.export program (pt2);
its legacy pickle format is measured too. Prints medians in milliseconds and the ratio
MLflow / gitml (above 1: gitml is faster).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CNN", "MLP", "ScriptCNN", "main"]


# The seed's image classifier, as the example ships it (two conv layers, dropout,
# view(-1, 64*8*8)): the benchmark measures the model users actually train.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "image-classifier"))
from model import Net as CNN  # noqa: E402


class MLP(nn.Module):
    """A wide MLP; `width` sets its size (4 layers of width x width float32)."""

    def __init__(self, width: int = 2560, depth: int = 4) -> None:
        super().__init__()
        self.width = width
        self.depth = depth
        self.layers = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ScriptCNN(nn.Module):
    """The seed's CNN written in this script, as the seed's train.py does (shipped as source)."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.25) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dropout = dropout
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.drop = nn.Dropout(dropout)
        self.fc1 = nn.Linear(64 * 8 * 8, 512)
        self.fc2 = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = self.drop(x)
        x = x.view(-1, 64 * 8 * 8)
        x = self.drop(torch.relu(self.fc1(x)))
        return self.fc2(x)


def _bench_paths(width: int, root: Path, repeats: int) -> None:
    """Where the class lives: a module shipped with code_paths (the path that existed before),
    the running script (extracted source), or no class at all (nn.Sequential: a recorded
    structure). log_model and load_model medians, and MLflow's load of the same network."""
    import gitml
    import gitml.pytorch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _nets import ModuleMLP

    here = Path(__file__).resolve().parent
    model_py = here.parents[0] / "examples" / "image-classifier" / "model.py"
    cnn_x = torch.randn(2, 3, 32, 32).numpy()
    mlp_x = torch.randn(2, width).numpy()
    torch.manual_seed(0)
    cases = [
        ("CNN, module + code_paths", CNN().eval(), cnn_x, [str(model_py)]),
        ("CNN, defined in the script", ScriptCNN().eval(), cnn_x, None),
        ("MLP, module + code_paths", ModuleMLP(width).eval(), mlp_x, [str(here / "_nets.py")]),
        ("MLP, nn.Sequential", nn.Sequential(*[nn.Linear(width, width) for _ in range(4)]).eval(), mlp_x, None),
    ]
    repo = _git_repo(root / "paths")
    os.chdir(repo)
    gitml.set_tracking_uri(str(repo))
    print(f"\nWhere the class lives (MLP width {width}): median ms over {repeats}, variants interleaved")
    print(f"  {'model':30} {'log_model':>10} {'load local':>11} {'mlflow load':>12} {'mlflow/gitml':>13}")
    uris: dict[str, str] = {}

    def log(label: str, model: nn.Module, example: Any, code_paths: Any) -> float:
        start = time.perf_counter()
        with gitml.start_run():
            info = gitml.pytorch.log_model(model, "model", code_paths=code_paths, input_example=example)
            gitml.flush()
        uris[label] = str(info.model_uri)
        return (time.perf_counter() - start) * 1000

    # Round-robin, so that a busy machine slows every variant alike.
    log_ms: dict[str, list[float]] = {label: [] for label, *_ in cases}
    for round_ in range(repeats + 1):
        for label, model, example, code_paths in cases:
            took = log(label, model, example, code_paths)
            if round_:  # the first round warms up
                log_ms[label].append(took)
    local = {label: str(gitml.models.resolve_model_uri(uris[label], root / f"local-{i}")) for i, (label, *_) in enumerate(cases)}
    load_ms: dict[str, list[float]] = {label: [] for label, *_ in cases}
    for round_ in range(repeats + 1):
        for label, *_ in cases:
            start = time.perf_counter()
            gitml.pytorch.load_model(local[label])
            if round_:
                load_ms[label].append((time.perf_counter() - start) * 1000)
    for i, (label, model, example, _) in enumerate(cases):
        mine = statistics.median(load_ms[label])
        theirs = _mlflow_load_ms(model, example, root / f"mlflow-{i}", repeats)
        shown = f"{theirs:12.1f} {theirs / mine:12.1f}x" if theirs else f"{'n/a':>12} {'n/a':>13}"
        print(f"  {label:30} {statistics.median(log_ms[label]):10.1f} {mine:11.1f} {shown}")


def _mlflow_load_ms(model: nn.Module, example: Any, root: Path, repeats: int) -> float | None:
    """MLflow 3's load_model (its default pt2 format) of the same network, from a local copy."""
    try:
        import mlflow
        import mlflow.pytorch
    except ImportError:
        return None
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    root.mkdir(parents=True)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    exp = mlflow.create_experiment("paths", artifact_location=(root / "mlruns").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    with contextlib.redirect_stderr(io.StringIO()):
        with mlflow.start_run():
            info = mlflow.pytorch.log_model(model, name="model", input_example=example, pip_requirements=["torch"])
        local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(root / "local"))
        mlflow.pytorch.load_model(local)
        return _median_ms(lambda: mlflow.pytorch.load_model(local), repeats)


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *args], cwd=path, check=True, env={**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"})
    return path


def _bench_gitml(model: nn.Module, root: Path, repeats: int, example: Any) -> dict[str, float]:
    import gitml
    import gitml.pytorch

    repo = _git_repo(root / "repo")
    os.chdir(repo)
    gitml.set_tracking_uri(str(repo))
    uris: dict[str, str] = {}

    def log(name: str, **kwargs: Any) -> None:
        with gitml.start_run():
            info = gitml.pytorch.log_model(model, "model", code_paths=[__file__], input_example=example, **kwargs)
            gitml.flush()
        assert info.model_uri is not None
        uris[name] = info.model_uri

    log("default")  # warm-up: imports, first commit
    out = {
        "log": _median_ms(lambda: log("default"), repeats),
        "log export": _median_ms(lambda: log("export", export=True), repeats),
    }
    uri = uris["default"]
    gitml.pytorch.load_model(uri)
    out["load runs:/"] = _median_ms(lambda: gitml.pytorch.load_model(uri), repeats)
    local = str(gitml.models.resolve_model_uri(uri, root / "local"))
    out["load local"] = _median_ms(lambda: gitml.pytorch.load_model(local), repeats)
    exported = str(gitml.models.resolve_model_uri(uris["export"], root / "local-export"))
    out["load local export"] = _median_ms(
        lambda: gitml.pytorch.load_model(exported, use_exported=True), repeats
    )
    return out


def _bench_mlflow(model: nn.Module, root: Path, repeats: int, example: Any) -> dict[str, float] | None:
    try:
        import mlflow
        import mlflow.pytorch
    except ImportError:
        return None
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # MLflow 3 refuses to unpickle unless told; the pickle rows measure its legacy path.
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    (root / "mlruns").mkdir(parents=True)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    exp = mlflow.create_experiment("bench", artifact_location=(root / "mlruns").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    uris: dict[str, str] = {}

    def log(name: str, **extra: Any) -> None:
        with mlflow.start_run():
            info = mlflow.pytorch.log_model(model, name="model", input_example=example, **extra)
        uris[name] = info.model_uri

    with contextlib.redirect_stderr(io.StringIO()):
        log("default")
        out = {
            "log": _median_ms(lambda: log("default"), repeats),
            "log pickle": _median_ms(lambda: log("pickle", serialization_format="pickle"), repeats),
            # MLflow's fastest spelling: requirements given, so none are inferred in a subprocess
            "log no inference": _median_ms(lambda: log("fast", pip_requirements=["torch"]), repeats),
            "log pickle no inference": _median_ms(
                lambda: log("fast-pickle", serialization_format="pickle", pip_requirements=["torch"]),
                repeats,
            ),
        }
        uri = uris["default"]
        mlflow.pytorch.load_model(uri)
        out["load runs:/"] = _median_ms(lambda: mlflow.pytorch.load_model(uri), repeats)
        local = mlflow.artifacts.download_artifacts(uri, dst_path=str(root / "local"))
        out["load local"] = _median_ms(lambda: mlflow.pytorch.load_model(local), repeats)
        pickled = mlflow.artifacts.download_artifacts(uris["pickle"], dst_path=str(root / "local-pickle"))
        out["load local pickle"] = _median_ms(lambda: mlflow.pytorch.load_model(pickled), repeats)
    return out


# (label, gitml measurement, MLflow measurement): MLflow 3's default PyTorch format is a
# torch.export program (pt2); "pickle" is its legacy format, refused on load unless allowed.
_ROWS = [
    ("log_model (defaults)", "log", "log"),
    ("log_model vs mlflow pickle", "log", "log pickle"),
    ("log_model export=True vs pt2", "log export", "log"),
    ("log_model vs mlflow, no req. inference", "log", "log no inference"),
    ("  ... vs mlflow pickle, no inference", "log", "log pickle no inference"),
    ("  export=True vs pt2, no inference", "log export", "log no inference"),
    ("load_model runs:/ (defaults)", "load runs:/", "load runs:/"),
    ("load_model local (defaults)", "load local", "load local"),
    ("load_model local vs mlflow pickle", "load local", "load local pickle"),
    ("load exported vs pt2 (local)", "load local export", "load local"),
]


def _report(title: str, mb: float, ours: dict[str, float], peer: dict[str, float] | None) -> None:
    print(f"\n{title} ({mb:.1f} MB of weights): median ms")
    print(f"  {'step':36} {'gitml':>9} {'mlflow':>9} {'mlflow/gitml':>13}")
    for label, mine, theirs in _ROWS:
        value = ours[mine]
        other = peer.get(theirs) if peer else None
        shown = f"{other:9.1f}" if other else "      n/a"
        ratio = f"{other / value:12.2f}x" if other else "          n/a"
        print(f"  {label:36} {value:9.1f} {shown} {ratio}")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-mb", type=float, default=100.0)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--paths-only", action="store_true", help="only the where-the-class-lives table")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    width = int(((args.big_mb * 1e6 / 4) / 4) ** 0.5)
    cases = [
        ("seed CNN", CNN().eval(), torch.randn(2, 3, 32, 32).numpy(), args.repeats),
        (f"MLP width {width}", MLP(width).eval(), torch.randn(2, width).numpy(), args.repeats),
    ]
    try:
        import mlflow  # noqa: F401
    except ImportError:
        if not args.skip_mlflow:
            print("MLflow is not installed in this interpreter: printing gitml only "
                  "(install mlflow to compare)", file=sys.stderr)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bench-paths-") as tmp:
        try:
            _bench_paths(width, Path(tmp), args.repeats)
        finally:
            os.chdir(cwd)
    if args.paths_only:
        return
    for title, model, example, repeats in cases:
        mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e6
        with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
            root = Path(tmp)
            try:
                ours = _bench_gitml(model, root / "g", repeats, example)
                peer = None if args.skip_mlflow else _bench_mlflow(model, root / "m", repeats, example)
            finally:
                os.chdir(cwd)
        _report(title, mb, ours, peer)


if __name__ == "__main__":
    main()

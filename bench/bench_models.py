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

__all__ = ["CNN", "MLP", "main"]


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

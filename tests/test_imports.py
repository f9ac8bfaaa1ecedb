"""`import gitml` stays cheap: no heavy dependency is imported, and it takes well under 0.3 s."""

from __future__ import annotations

import json
import subprocess
import sys

import gitml

HEAVY = ("torch", "dvc", "dvc_data", "starlette", "uvicorn", "pandas", "sklearn", "numpy", "jsonschema", "git", "yaml")


def test_import_pulls_no_heavy_module() -> None:
    code = "import sys, gitml; print(__import__('json').dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_import_time() -> None:
    code = "import time; t = time.perf_counter(); import gitml; print(time.perf_counter() - t)"
    times = sorted(
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    )
    assert times[1] < 0.3


def test_public_names_resolve() -> None:
    for name in gitml.__all__:
        assert getattr(gitml, name) is not None, name
    for name in ("MlflowClient", "entities", "tracking", "exceptions"):
        assert getattr(gitml, name) is not None
    from gitml.tracking import MlflowClient  # noqa: F401


def test_mlflow_names_exist() -> None:
    import gitml.entities as e

    for name in ("Run", "RunInfo", "RunData", "Metric", "Param", "RunTag", "Experiment", "ViewType", "RunStatus"):
        assert hasattr(e, name)
    assert gitml.MlflowClient is gitml.GitMLClient

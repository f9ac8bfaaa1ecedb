"""Every schema in schemas/ is a valid JSON Schema, and what gitml writes matches them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

import gitml as mlflow
from gitml.tracking import layout

SCHEMAS = sorted((Path(__file__).resolve().parent.parent / "schemas").glob("*.json"))


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid(path: Path) -> None:
    schema = json.loads(path.read_text())
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_every_file_on_the_branch_matches_its_schema(repo: Path) -> None:
    mlflow.set_experiment("schemas")
    with mlflow.start_run():
        mlflow.log_params({"a": 1})
        mlflow.log_metric("m", float("nan"), step=3)
        mlflow.set_tag("t", "v")
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", "gitml"], cwd=repo, capture_output=True, text=True).stdout.split()
    checked = 0
    for path in files:
        data = subprocess.run(["git", "show", f"gitml:{path}"], cwd=repo, capture_output=True, check=True).stdout
        name = layout.schema_for(path)
        if name is None:
            continue
        obj = yaml.safe_load(data) if path.endswith(".yaml") else json.loads(data)
        schema = json.loads((layout.SCHEMA_DIR / name).read_text())
        jsonschema.validate(obj, schema)
        checked += 1
    assert checked >= 7


@pytest.mark.parametrize(
    ("path", "obj"),
    [
        ("runs/ab/" + "ab" * 16 + "/meta.json", {"run_id": "nope", "experiment_id": "0", "status": "RUNNING", "lifecycle_stage": "active"}),
        ("runs/ab/" + "ab" * 16 + "/meta.json", {"run_id": "ab" * 16, "experiment_id": "0", "status": "DONE", "lifecycle_stage": "active"}),
        ("runs/ab/" + "ab" * 16 + "/params.json", {"p": 1}),
        ("runs/ab/" + "ab" * 16 + "/metrics.json", {"m": {"value": "high", "timestamp": 1, "step": 0}}),
        ("experiments/1/meta.yaml", {"experiment_id": "x", "name": "n", "lifecycle_stage": "active"}),
        ("gitml.yaml", {"version": 1}),
    ],
)
def test_invalid_files_are_refused_on_write(path: str, obj: dict) -> None:
    from gitml.exceptions import CorruptMetadata

    with pytest.raises(CorruptMetadata, match=path.rsplit("/", 1)[-1]):
        layout.encode(path, obj)

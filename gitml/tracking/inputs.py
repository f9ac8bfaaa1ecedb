"""A run's dataset inputs (MLflow's `log_inputs`): `inputs.jsonl` in the run's folder.

One JSON object a line (schemas/run-input.schema.json), appended, never rewritten: two
clones that log inputs to the same run merge by the union of their lines. A dataset is
named by (name, digest); the same dataset in the same context (the `mlflow.data.context`
input tag) is one input, however often it is logged or merged.

Read back from a shared branch, the file is hostile: its size, each line's size and shape,
and the number of inputs are bounded; a bad line is skipped with one aggregated warning.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from gitml import constants as C
from gitml.entities import Dataset, DatasetInput, InputTag, RunInputs
from gitml.exceptions import CorruptMetadata, InvalidParameterValue, ResourceDoesNotExist
from gitml.store.bounded import MAX_FILE_BYTES, load_json
from gitml.tracking import layout
from gitml.tracking.validation import check_run_id

__all__ = [
    "MAX_INPUTS",
    "MAX_LINE_BYTES",
    "SCHEMA",
    "decode_inputs",
    "encode_input",
    "input_key",
    "record_inputs",
    "to_pairs",
]

SCHEMA = "run-input.schema.json"
MAX_INPUTS = 1000  # inputs per run read back; more are dropped with a warning
MAX_LINE_BYTES = 2 << 20  # one line: the schema allows 1 MiB of schema text, plus the rest
_MAX_LINES = 100_000  # lines looked at (duplicates included) before giving up on the rest

log = logging.getLogger(__name__)


def _context(tags: dict[str, str]) -> str:
    return tags.get(C.TAG_DATASET_CONTEXT, "")


def input_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """What names an input: the dataset's name and digest, and its context."""
    return (obj["name"], obj["digest"], _context(obj.get("tags") or {}))


def encode_input(
    path: str, dataset: Dataset, tags: dict[str, str], timestamp: int | None = None
) -> dict[str, Any]:
    """One line's object, validated (InvalidParameterValue names what is wrong)."""
    obj: dict[str, Any] = {
        "name": dataset.name,
        "digest": dataset.digest,
        "source_type": dataset.source_type,
        "source": dataset.source,
        "schema": dataset.schema,
        "profile": dataset.profile,
        "tags": dict(tags),
        "timestamp": int(time.time() * 1000) if timestamp is None else timestamp,
    }
    try:
        layout.validate(path, obj, SCHEMA)
    except CorruptMetadata as e:
        raise InvalidParameterValue(f"invalid dataset input: {e.message}") from None
    return obj


def _line(obj: dict[str, Any]) -> bytes:
    return (
        json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    )


def _entity(obj: dict[str, Any]) -> DatasetInput:
    dataset = Dataset(
        obj["name"],
        obj["digest"],
        obj["source_type"],
        obj["source"],
        obj.get("schema"),
        obj.get("profile"),
    )
    tags = tuple(InputTag(k, v) for k, v in sorted((obj.get("tags") or {}).items()))
    return DatasetInput(dataset, tags)


def _objects(path: str, data: bytes, problems: list[str]) -> list[dict[str, Any]]:
    """The valid, distinct input objects of the file, in the order first logged."""
    if len(data) > MAX_FILE_BYTES:
        problems.append(f"{path}: larger than {MAX_FILE_BYTES} bytes, not read")
        return []
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for n, line in enumerate(data.splitlines(), 1):
        if n > _MAX_LINES or len(out) >= MAX_INPUTS:
            problems.insert(0, f"{path}: more than {MAX_INPUTS} inputs; the rest not read")
            break
        if not line.strip():
            continue
        try:
            obj = load_json(line, f"{path} line {n}", max_bytes=MAX_LINE_BYTES, max_depth=4)
            layout.validate(f"{path} line {n}", obj, SCHEMA)
        except CorruptMetadata as e:
            problems.append(e.message)
            continue
        key = input_key(obj)
        if key not in out:
            out[key] = obj
    return sorted(out.values(), key=lambda o: o["timestamp"])


def decode_inputs(path: str, data: bytes | None) -> RunInputs:
    """The run's inputs from its `inputs.jsonl` (bad lines skipped, one warning for all)."""
    if not data:
        return RunInputs()
    problems: list[str] = []
    objs = _objects(path, data, problems)
    if problems:
        shown = "; ".join(p[:200] for p in problems[:3])
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        log.warning("gitml: skipped %d bad dataset input line(s): %s%s", len(problems), shown, more)
    return RunInputs([_entity(o) for o in objs])


def record_inputs(
    tracker: Any, run_id: str, inputs: Iterable[tuple[Dataset, dict[str, str]]]
) -> None:
    """Append the inputs not yet recorded to the run's `inputs.jsonl` and commit at once."""
    check_run_id(run_id)
    path = f"{C.run_dir(run_id)}/{C.RUN_INPUTS}"
    now = int(time.time() * 1000)
    new = [encode_input(path, d, t, now) for d, t in inputs]
    if not new:
        return

    def build(tree: str) -> dict[str, bytes | None]:
        if tracker.repo.lookup(tree, f"{C.run_dir(run_id)}/{C.RUN_META}") is None:
            raise ResourceDoesNotExist(f"run '{run_id}' not found")
        data = tracker.repo.read_file(tree, path) or b""
        seen = {input_key(o) for o in _objects(path, data, [])}
        added = b""
        for obj in new:
            if input_key(obj) not in seen:
                seen.add(input_key(obj))
                added += _line(obj)
        if not added:
            return {}
        if data and not data.endswith(b"\n"):
            data += b"\n"
        return {path: data + added}

    tracker.flush()
    names = ", ".join(sorted({o["name"] for o in new}))[:200]
    tracker.repo.commit(build, f"run {run_id} inputs: {names}")


def to_pairs(datasets: Iterable[Any]) -> list[tuple[Dataset, dict[str, str]]]:
    """(Dataset entity, input tags) for `DatasetInput` entities or datasets of `gitml.data`."""
    out = []
    for item in datasets:
        tags: dict[str, str] = {}
        dataset = item
        if isinstance(item, DatasetInput) or hasattr(item, "dataset"):
            dataset = item.dataset
            for tag in getattr(item, "tags", None) or ():
                tags[str(tag.key)] = str(tag.value)
        if not isinstance(dataset, Dataset):
            to_entity = getattr(dataset, "to_entity", None) or getattr(
                dataset, "_to_mlflow_entity", None
            )
            if to_entity is None:
                raise InvalidParameterValue(f"not a dataset: {type(dataset).__name__}")
            dataset = to_entity()
        if not isinstance(dataset, Dataset):
            raise InvalidParameterValue(f"not a dataset: {type(dataset).__name__}")
        out.append((dataset, tags))
    return out

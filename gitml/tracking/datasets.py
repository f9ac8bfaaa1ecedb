"""Datasets a run can log as inputs (`gitml.data.from_pandas`, `gitml.data.from_numpy`).

A dataset carries a name, a digest (8 hex characters of a SHA-256 over its shape, column
names and types and its first 10,000 rows: the same data gives the same digest), its source
(JSON: where it came from), its schema (MLflow's column-spec or tensor-spec JSON) and a
profile (row and element counts). pandas and numpy are imported only when a dataset is made.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlparse

from gitml.entities import Dataset
from gitml.exceptions import InvalidParameterValue

__all__ = ["NumpyDataset", "PandasDataset", "TrackedDataset", "from_numpy", "from_pandas"]

_DIGEST_ROWS = 10_000

# pandas/numpy dtype kinds -> MLflow column types
_KIND_TYPES = {
    "b": "boolean",
    "i": "long",
    "u": "long",
    "f": "double",
    "M": "datetime",
    "O": "string",
    "U": "string",
    "S": "binary",
}


def _source(source: Any) -> tuple[str, str]:
    """(source_type, source JSON) for a source given as a URI/path, a dict, or nothing."""
    if source is None:
        return "code", json.dumps({"tags": {}})
    if isinstance(source, dict):
        return str(source.get("source_type", "code"))[:36], json.dumps(
            source, sort_keys=True, default=str
        )
    text = str(source)
    scheme = urlparse(text).scheme.lower()
    if scheme in ("http", "https"):
        return "http", json.dumps({"url": text})
    if scheme and len(scheme) > 1 and scheme != "file":  # one letter: a Windows drive
        return scheme[:36], json.dumps({"uri": text})
    return "local", json.dumps({"uri": text})


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:8]


class TrackedDataset:
    """A dataset ready for `log_input`: name, digest, source, schema and profile."""

    def __init__(self, source: Any, name: str | None, digest: str | None) -> None:
        self.source_type, self.source = _source(source)
        self._name = name
        self._digest = digest

    @property
    def digest(self) -> str:
        """A short hash of the data (or the one given)."""
        if self._digest is None:
            self._digest = self._compute_digest()
        return self._digest

    @property
    def name(self) -> str:
        """The name given, else `dataset`."""
        return self._name or "dataset"

    @property
    def schema(self) -> str | None:
        """The schema as MLflow's schema JSON."""
        return None

    @property
    def profile(self) -> str | None:
        """Summary counts as JSON."""
        return None

    def _compute_digest(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, str | None]:
        """The dataset's fields as strings (MLflow's `to_dict`)."""
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self.source,
            "source_type": self.source_type,
            "schema": self.schema,
            "profile": self.profile,
        }

    def to_entity(self) -> Dataset:
        """The Dataset entity a run records."""
        return Dataset(
            self.name, self.digest, self.source_type, self.source, self.schema, self.profile
        )

    _to_mlflow_entity = to_entity


class PandasDataset(TrackedDataset):
    """A pandas DataFrame as a dataset; `targets` names the target column."""

    def __init__(
        self,
        df: Any,
        source: Any = None,
        targets: str | None = None,
        name: str | None = None,
        digest: str | None = None,
    ) -> None:
        if targets is not None and targets not in df.columns:
            raise InvalidParameterValue(
                f"targets column {targets!r} is not a column of the DataFrame"
            )
        self.df = df
        self.targets = targets
        super().__init__(source, name, digest)

    @property
    def features(self) -> Any:
        """The DataFrame without the targets column."""
        return self.df.drop(columns=[self.targets]) if self.targets else self.df

    def _compute_digest(self) -> str:
        import pandas as pd

        head = self.df.head(_DIGEST_ROWS)
        try:
            rows = pd.util.hash_pandas_object(head, index=False).to_numpy().tobytes()
        except TypeError:  # unhashable cells (lists, dicts): their text
            rows = head.astype(str).to_csv(index=False).encode()
        meta = json.dumps(
            [[str(c), str(t)] for c, t in self.df.dtypes.items()] + [list(self.df.shape)]
        )
        return _digest(meta.encode(), rows)

    @property
    def schema(self) -> str | None:
        """MLflow's column-spec JSON."""
        cols = [
            {"type": _KIND_TYPES.get(t.kind, "string"), "name": str(c), "required": True}
            for c, t in self.df.dtypes.items()
        ]
        return json.dumps({"mlflow_colspec": cols})

    @property
    def profile(self) -> str | None:
        """Number of rows and of elements."""
        rows, cols = self.df.shape
        return json.dumps({"num_rows": int(rows), "num_elements": int(rows * cols)})


class NumpyDataset(TrackedDataset):
    """A numpy array of features (and optionally one of targets) as a dataset."""

    def __init__(
        self,
        features: Any,
        source: Any = None,
        targets: Any = None,
        name: str | None = None,
        digest: str | None = None,
    ) -> None:
        import numpy as np

        self.features = np.asarray(features)
        self.targets = None if targets is None else np.asarray(targets)
        super().__init__(source, name, digest)

    def _compute_digest(self) -> str:
        parts = []
        for arr in (self.features, self.targets):
            if arr is None:
                continue
            flat = arr.reshape(-1)[: _DIGEST_ROWS * 100]
            body = flat.tobytes() if arr.dtype.kind != "O" else repr(flat.tolist()).encode()
            parts += [f"{arr.dtype.str}{list(arr.shape)}".encode(), body]
        return _digest(*parts)

    @staticmethod
    def _spec(arr: Any) -> str:
        return json.dumps(
            [
                {
                    "type": "tensor",
                    "tensor-spec": {"dtype": str(arr.dtype), "shape": [-1, *arr.shape[1:]]},
                }
            ]
        )

    @property
    def schema(self) -> str | None:
        """MLflow's tensor-spec JSON for features and targets."""
        spec: dict[str, Any] = {"features": self._spec(self.features)}
        if self.targets is not None:
            spec["targets"] = self._spec(self.targets)
        return json.dumps({"mlflow_tensorspec": spec})

    @property
    def profile(self) -> str | None:
        """Shapes and sizes of features and targets."""
        out: dict[str, Any] = {
            "num_rows": int(self.features.shape[0]) if self.features.ndim else 1,
            "num_elements": int(self.features.size),
        }
        out.update(
            features_shape=list(self.features.shape),
            features_size=int(self.features.size),
            features_nbytes=int(self.features.nbytes),
        )
        if self.targets is not None:
            out.update(
                targets_shape=list(self.targets.shape),
                targets_size=int(self.targets.size),
                targets_nbytes=int(self.targets.nbytes),
            )
        return json.dumps(out)


def from_pandas(
    df: Any,
    source: Any = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
) -> PandasDataset:
    """A dataset of a pandas DataFrame (MLflow's `mlflow.data.from_pandas`)."""
    return PandasDataset(df, source=source, targets=targets, name=name, digest=digest)


def from_numpy(
    features: Any,
    source: Any = None,
    targets: Any = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    """A dataset of numpy arrays (MLflow's `mlflow.data.from_numpy`)."""
    return NumpyDataset(features, source=source, targets=targets, name=name, digest=digest)

"""The MLmodel file: a model folder's description (flavors, signature, example, ids), MLflow's layout."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from gitml.exceptions import CorruptMetadata, InvalidParameterValue, ResourceDoesNotExist
from gitml.models.signature import ModelSignature, ParamSchema, Schema
from gitml.store.bounded import load_yaml

__all__ = [
    "MLMODEL_FILE",
    "MLMODEL_FORMAT",
    "PYFUNC_FLAVOR",
    "Model",
    "ModelInfo",
]

MLMODEL_FILE = "MLmodel"
# Raised when the MLmodel layout changes incompatibly; readers refuse anything newer.
MLMODEL_FORMAT = 1
PYFUNC_FLAVOR = "python_function"
_SCHEMA_FILE = "mlmodel.schema.json"
# libyaml's loader is as safe as SafeLoader and ~10x faster (it dominated model load times).
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema_path = Path(__file__).resolve().parent.parent / "schemas" / _SCHEMA_FILE
    schema = json.loads(schema_path.read_text())
    return jsonschema.Draft202012Validator(schema)


def _validate(data: Any, where: str) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        loc = "/".join(str(p) for p in e.absolute_path) or "(top)"
        raise CorruptMetadata(f"{where}: invalid MLmodel at {loc}: {e.message}")


def _gitml_version() -> str:
    from gitml.constants import VERSION

    return VERSION


@dataclass(frozen=True)
class ModelInfo:
    """What `log_model` returns and `Model.get_model_info()` answers (MLflow's ModelInfo)."""

    artifact_path: str | None
    flavors: dict[str, Any]
    model_uri: str | None
    model_uuid: str
    run_id: str | None
    saved_input_example_info: dict[str, Any] | None
    signature: ModelSignature | None
    utc_time_created: str
    gitml_version: str | None
    metadata: dict[str, Any] | None = None
    registered_model_version: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def signature_dict(self) -> dict[str, Any] | None:
        """The signature as the MLmodel file stores it."""
        return self.signature.to_dict() if self.signature is not None else None


class Model:
    """An MLmodel file in memory: flavors, signature, input example info and ids."""

    def __init__(
        self,
        artifact_path: str | None = None,
        run_id: str | None = None,
        utc_time_created: str | None = None,
        flavors: dict[str, Any] | None = None,
        signature: ModelSignature | None = None,
        saved_input_example_info: dict[str, Any] | None = None,
        model_uuid: str | None = None,
        metadata: dict[str, Any] | None = None,
        model_size_bytes: int | None = None,
        gitml_version: str | None = None,
        gitml_format: int = MLMODEL_FORMAT,
        **extra: Any,
    ) -> None:
        self.artifact_path = artifact_path
        self.run_id = run_id
        self.utc_time_created = utc_time_created or datetime.now(timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S.%f"
        )
        self.flavors: dict[str, Any] = dict(flavors or {})
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.metadata = metadata
        self.model_size_bytes = model_size_bytes
        self.gitml_version = gitml_version or _gitml_version()
        self.gitml_format = gitml_format
        # Keys a later gitml (same format) may add are kept, so a rewrite does not drop them.
        self.extra = extra

    def add_flavor(self, name: str, **params: Any) -> Model:
        """Add (or replace) a flavor section; returns self, as MLflow's does."""
        self.flavors[name] = params
        return self

    def get_input_schema(self) -> Schema | None:
        """The input schema, if the model has a signature."""
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Schema | None:
        """The output schema, if the model has a signature."""
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self) -> ParamSchema | None:
        """The inference params' schema, if the model's signature declares params."""
        return self.signature.params if self.signature is not None else None

    def get_model_info(self, model_uri: str | None = None) -> ModelInfo:
        """MLflow's ModelInfo for this model: uuid, run id, flavors, signature, ..."""
        return ModelInfo(
            artifact_path=self.artifact_path,
            flavors=self.flavors,
            model_uri=model_uri
            or (f"runs:/{self.run_id}/{self.artifact_path}" if self.run_id and self.artifact_path else None),
            model_uuid=self.model_uuid,
            run_id=self.run_id,
            saved_input_example_info=self.saved_input_example_info,
            signature=self.signature,
            utc_time_created=self.utc_time_created,
            gitml_version=self.gitml_version,
            metadata=self.metadata,
        )

    def to_dict(self) -> dict[str, Any]:
        """The MLmodel content as a plain dict (keys sorted on write, as MLflow's are)."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            {
                "artifact_path": self.artifact_path,
                "flavors": self.flavors,
                "gitml_format": self.gitml_format,
                "gitml_version": self.gitml_version,
                "model_uuid": self.model_uuid,
                "utc_time_created": self.utc_time_created,
            }
        )
        if self.run_id is not None:
            out["run_id"] = self.run_id
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
        if self.saved_input_example_info is not None:
            out["saved_input_example_info"] = self.saved_input_example_info
        if self.metadata is not None:
            out["metadata"] = self.metadata
        if self.model_size_bytes is not None:
            out["model_size_bytes"] = self.model_size_bytes
        return out

    def to_yaml(self) -> str:
        """The MLmodel file's text."""
        return str(yaml.dump(self.to_dict(), Dumper=_Dumper, default_flow_style=False, sort_keys=True))

    def save(self, path: Path | str) -> None:
        """Write the MLmodel file (`path` is the file or the model folder); validated first."""
        target = Path(path)
        if target.is_dir():
            target = target / MLMODEL_FILE
        data = self.to_dict()
        _validate(data, str(target))
        try:
            text = yaml.dump(data, Dumper=_Dumper, default_flow_style=False, sort_keys=True)
        except yaml.YAMLError as e:
            raise InvalidParameterValue(f"MLmodel holds a value YAML cannot write: {e}") from e
        target.write_text(text)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "MLmodel") -> Model:
        """Build from the parsed file, checking the format version and the schema."""
        if not isinstance(data, dict):
            raise CorruptMetadata(f"{where}: MLmodel is not a mapping")
        fmt = data.get("gitml_format")
        if fmt is None:
            hint = " (saved by MLflow? gitml reads only models it saved)" if "mlflow_version" in data else ""
            raise CorruptMetadata(f"{where}: MLmodel has no gitml_format{hint}")
        if isinstance(fmt, int) and fmt > MLMODEL_FORMAT:
            raise InvalidParameterValue(
                f"{where}: model format {fmt} is newer than this gitml reads ({MLMODEL_FORMAT}); "
                "upgrade gitml to load it"
            )
        _validate(data, where)
        data = dict(data)
        sig = data.pop("signature", None)
        signature = ModelSignature.from_dict(sig) if sig else None
        known = {
            "artifact_path",
            "run_id",
            "utc_time_created",
            "flavors",
            "saved_input_example_info",
            "model_uuid",
            "metadata",
            "model_size_bytes",
            "gitml_version",
            "gitml_format",
        }
        kwargs = {k: data.pop(k) for k in list(data) if k in known}
        return cls(signature=signature, **kwargs, **data)

    @classmethod
    def load(cls, path: Path | str) -> Model:
        """Read and validate an MLmodel file (`path` is the file, the model folder, or a model
        URI such as `runs:/<run_id>/model`)."""
        if isinstance(path, str) and path.startswith(("runs:/", "models:/")):
            from gitml.models.uri import model_file

            with model_file(path, MLMODEL_FILE) as file:
                return cls.load(file)
        target = Path(path)
        if target.is_dir():
            target = target / MLMODEL_FILE
        if not target.is_file():
            raise ResourceDoesNotExist(f"no MLmodel file at {target}: is this a model folder?")
        try:
            text = target.read_text()
        except UnicodeDecodeError as e:
            raise CorruptMetadata(f"{target}: MLmodel is not valid YAML: {e}") from e
        # Model folders come from remotes: bounded, no aliases (load_yaml names the file on error).
        try:
            data = load_yaml(text, "the file")
        except CorruptMetadata as e:
            raise CorruptMetadata(f"{target}: MLmodel is not valid YAML ({e.message})") from e
        return cls.from_dict(data, str(target))

    def __repr__(self) -> str:
        return f"Model(flavors={sorted(self.flavors)}, model_uuid={self.model_uuid!r}, run_id={self.run_id!r})"

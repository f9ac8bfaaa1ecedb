"""KServe's own API schema, read from its Python SDK, to check gitml's KServe manifests strictly.

The `kserve` package on PyPI ships models generated from the OpenAPI description of
KServe's CRD types (`serving.kserve.io` v1beta1 InferenceService, v1alpha1 ServingRuntime):
each class lists its fields, their JSON names and types, the required ones and enums. The
SDK itself needs a model server's worth of dependencies, so `make tools` installs it
without them into a folder of its own (`.tools/kserve-sdk`), and this module reads the
model files as data (their syntax tree), never importing them. Kubernetes' own types inside
those (`V1Container`, `V1ObjectMeta`, ...) are checked against kubernetes-validate's strict
schemas of the same definitions. An unknown field anywhere is an error.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["KServeSchema", "SDK_DIR", "SDK_VERSION"]

SDK_VERSION = "0.21.0"  # the Makefile's pin (KSERVE_SDK)
SDK_DIR = Path(__file__).resolve().parents[2] / ".tools" / "kserve-sdk"
K8S_SCHEMA = "v1.33.0-local-strict"

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(str, (.+)\)$")


class _Model:
    def __init__(self, types: dict[str, str], keys: dict[str, str], required: set[str], enums: dict[str, list[Any]]) -> None:
        self.types = {keys[a]: t for a, t in types.items()}  # JSON name -> type
        self.required = {keys[a] for a in required}
        self.enums = {keys[a]: v for a, v in enums.items()}


def _class_models(path: Path) -> dict[str, _Model]:
    tree = ast.parse(path.read_text())
    out = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        found: dict[str, Any] = {}
        required: set[str] = set()
        enums: dict[str, list[Any]] = {}
        for node in cls.body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id in ("openapi_types", "attribute_map"):
                    found[node.targets[0].id] = ast.literal_eval(node.value)
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list
            ):
                text = ast.unparse(node)
                if "must not be `None`" in text:
                    required.add(node.name)
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Assign) and getattr(sub.targets[0], "id", "") == "allowed_values":
                        enums[node.name] = ast.literal_eval(sub.value)
        if "openapi_types" in found and "attribute_map" in found:
            out[cls.name] = _Model(found["openapi_types"], found["attribute_map"], required, enums)
    return out


class KServeSchema:
    """The SDK's models by class name, and a strict check of a document against one."""

    def __init__(self, sdk_dir: Path = SDK_DIR) -> None:
        models_dir = sdk_dir / "kserve" / "models"
        if not models_dir.is_dir():
            raise FileNotFoundError(models_dir)
        self.models: dict[str, _Model] = {}
        for path in sorted(models_dir.glob("*.py")):
            self.models.update(_class_models(path))

    def errors(self, doc: Any, type_name: str) -> list[str]:
        """Every way `doc` breaks the schema of `type_name` (empty: valid)."""
        out: list[str] = []
        self._check(doc, type_name, "$", out)
        return out

    def _check(self, value: Any, type_name: str, where: str, out: list[str]) -> None:
        if m := _LIST.match(type_name):
            if not isinstance(value, list):
                out.append(f"{where}: expected a list ({type_name})")
                return
            for i, item in enumerate(value):
                self._check(item, m.group(1), f"{where}[{i}]", out)
            return
        if m := _DICT.match(type_name):
            if not isinstance(value, dict):
                out.append(f"{where}: expected an object ({type_name})")
                return
            for k, item in value.items():
                if not isinstance(k, str):
                    out.append(f"{where}: key {k!r} is not a string")
                self._check(item, m.group(1), f"{where}.{k}", out)
            return
        scalar = _SCALARS.get(type_name)
        if scalar is not None:
            if not scalar(value):
                out.append(f"{where}: {value!r} is not a {type_name}")
            return
        model = self.models.get(type_name)
        if model is not None:
            self._check_model(value, model, type_name, where, out)
            return
        definition = _kubernetes_file(type_name)
        if definition is None:
            out.append(f"{where}: no schema for type {type_name} in the KServe SDK or Kubernetes")
            return
        out.extend(f"{where}: {e}" for e in _kubernetes_errors(value, definition))

    def _check_model(self, value: Any, model: _Model, type_name: str, where: str, out: list[str]) -> None:
        if not isinstance(value, dict):
            out.append(f"{where}: expected an object ({type_name})")
            return
        for key in value:
            if key not in model.types:
                out.append(f"{where}: unknown field {key!r} for {type_name}")
        for key in sorted(model.required - set(value)):
            out.append(f"{where}: required field {key!r} of {type_name} is missing")
        for key, item in value.items():
            if key in model.types:
                if key in model.enums and item not in model.enums[key]:
                    out.append(f"{where}.{key}: {item!r} is not one of {model.enums[key]}")
                self._check(item, model.types[key], f"{where}.{key}", out)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_SCALARS = {
    "str": lambda v: isinstance(v, str),
    "int": _is_int,
    "float": lambda v: _is_int(v) or isinstance(v, float),
    "bool": lambda v: isinstance(v, bool),
    "object": lambda v: True,
    "datetime": lambda v: isinstance(v, str),
    "date": lambda v: isinstance(v, str),
    "ResourceQuantity": lambda v: isinstance(v, str) or _is_int(v) or isinstance(v, float),
}


def _schema_dir() -> Path:
    import kubernetes_validate

    return Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / K8S_SCHEMA


def _kubernetes_file(type_name: str) -> Path | None:
    """kubernetes-validate's strict schema file for a Kubernetes client type name:
    `V1Container` -> container-v1.json, `V1ObjectMeta` -> objectmeta-meta-v1.json,
    `K8sIoApiAppsV1DeploymentStrategy` -> deploymentstrategy-apps-v1.json."""
    folder = _schema_dir()
    m = re.match(r"^(?:K8sIoApi([A-Z][a-z]+))?(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)$", type_name)
    if m is None:
        return None
    group, version, kind = m.group(1), m.group(2).lower(), m.group(3).lower()
    names = [f"{kind}-{group.lower()}-{version}.json"] if group else [f"{kind}-{version}.json", f"{kind}-meta-{version}.json"]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


@cache
def _definitions() -> Any:
    from referencing import Registry, Resource

    defs = json.loads((_schema_dir() / "_definitions.json").read_text())
    return Resource.from_contents(defs) @ Registry()


def _kubernetes_errors(value: Any, path: Path) -> list[str]:
    import jsonschema
    from referencing import Resource

    schema = json.loads(path.read_text())
    registry = Resource.from_contents(schema) @ _definitions()
    validator = jsonschema.validators.Draft202012Validator(schema, registry=registry)
    return [".".join([*map(str, e.absolute_path), e.message]) for e in validator.iter_errors(value)]

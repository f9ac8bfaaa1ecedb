"""A bounded YAML reader that keeps where each key and value was written (line, column).

MLproject errors point at `file:line:column`, so the loader keeps PyYAML's node marks
beside the data: `marks[path]` is the 1-based (line, column) of the value at `path`, and
`key_marks[path]` where its key was written. Aliases are refused (a project file has no
use for them, and they are the "billion laughs" of YAML), and so are files over 1 MiB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gitml.exceptions import InvalidParameterValue

__all__ = ["MAX_BYTES", "Located", "load_located"]

MAX_BYTES = 1 << 20
_MAX_DEPTH = 32

Path_ = tuple[Any, ...]


@dataclass
class Located:
    """Parsed YAML data and the marks of every node, by path of keys/indexes."""

    data: Any
    file: str
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_, key: bool = False) -> str:
        """`file:line:column` of the value (or key) at `path`, or of its nearest parent."""
        table = self.key_marks if key and path in self.key_marks else self.marks
        p = path
        while p not in table and p:
            p = p[:-1]
        line, col = table.get(p, (1, 1))
        return f"{self.file}:{line}:{col}"


def load_located(text: str, file: str) -> Located:
    """Parse one YAML document, keeping marks; errors carry `file:line:column`."""
    import yaml

    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InvalidParameterValue(f"{file}: larger than {MAX_BYTES} bytes")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        out = Located(None, file)
        if node is not None:
            _walk(node, (), out, set(), 0)
            out.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        raise InvalidParameterValue(f"{where}: YAML error: {e.problem or e.context}") from e
    except yaml.YAMLError as e:
        raise InvalidParameterValue(f"{file}: YAML error: {e}") from e
    finally:
        loader.dispose()
    return out


def _walk(node: Any, path: Path_, out: Located, seen: set[int], depth: int) -> None:
    import yaml

    if depth > _MAX_DEPTH:
        raise InvalidParameterValue(f"{out.where(path)}: nested deeper than {_MAX_DEPTH} levels")
    if id(node) in seen:  # the composer hands an alias back as the node it names
        m = node.start_mark
        raise InvalidParameterValue(
            f"{out.file}:{m.line + 1}:{m.column + 1}: YAML anchors and aliases are not allowed here"
        )
    seen.add(id(node))
    out.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                m = key_node.start_mark
                raise InvalidParameterValue(
                    f"{out.file}:{m.line + 1}:{m.column + 1}: a key must be a plain value"
                )
            key = key_node.value
            out.key_marks[path + (key,)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            _walk(value_node, path + (key,), out, seen, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), out, seen, depth + 1)

"""Parameters checked and coerced, and the command built as an argument list (no shell).

The command template is split into arguments first (POSIX rules, as a shell would split
it), then each `{param}` fills in inside the one argument it was written in. A value
holding `;`, `$(...)`, backticks or a newline therefore stays one literal argument. A
template that needs a shell (pipes, `&&`, redirections, `$VAR`) must say `shell: true`;
then values are quoted for the shell, as MLflow quotes them.
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
import string
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from gitml.projects.spec import EntryPoint, Parameter, did_you_mean

__all__ = ["build_argv", "coerce", "resolve_params", "shell_syntax"]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_EXTRA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,249}$")
_MAX_VALUE = 64 * 1024


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def coerce(param: Parameter, value: Any) -> str:
    """Check `value` against the parameter's type, choices and bounds; return it as text.

    The text logged is the value as given (MLflow logs `-P alpha=0.50` as `0.50`); only
    `path` values become absolute (see `resolve_params`).
    """
    text = _text(value)
    name = param.name
    if "\x00" in text or len(text) > _MAX_VALUE:
        raise InvalidParameterValue(
            f"parameter '{name}': value holds NUL or is longer than {_MAX_VALUE} bytes"
        )
    number: float | None = None
    if param.type == "int":
        try:
            number = int(text.strip(), 10)
        except ValueError:
            raise InvalidParameterValue(f"parameter '{name}' is an int; got {text!r}") from None
    elif param.type == "float":
        try:
            number = float(text)
        except ValueError:
            raise InvalidParameterValue(f"parameter '{name}' is a float; got {text!r}") from None
        if math.isnan(number):
            raise InvalidParameterValue(f"parameter '{name}' is a float; got NaN")
    elif param.type == "bool":
        if text.strip().lower() not in _TRUE + _FALSE:
            raise InvalidParameterValue(f"parameter '{name}' is a bool (true/false); got {text!r}")
    elif param.type == "uri":
        if not urlparse(text).scheme:
            raise InvalidParameterValue(f"parameter '{name}' is a uri; got {text!r} (no scheme)")
    if param.choices is not None:
        allowed = [_text(c) for c in param.choices]
        if text not in allowed and not (
            number is not None and any(_same_number(number, c) for c in param.choices)
        ):
            raise InvalidParameterValue(
                f"parameter '{name}' must be one of {', '.join(allowed)}; got {text!r}"
            )
    if number is not None:
        if param.min is not None and number < param.min:
            raise InvalidParameterValue(f"parameter '{name}' must be >= {param.min}; got {text}")
        if param.max is not None and number > param.max:
            raise InvalidParameterValue(f"parameter '{name}' must be <= {param.max}; got {text}")
    return text


def _same_number(number: float, choice: Any) -> bool:
    try:
        return float(choice) == number
    except (TypeError, ValueError):
        return False


def resolve_params(
    entry: EntryPoint, given: dict[str, str], root: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """(declared values with defaults, extra values) for a run, all checked before it starts.

    An undeclared name is passed on as `--name value` (MLflow does so), unless it looks
    like a misspelling of a declared one, which is refused.
    """
    final: dict[str, str] = {}
    extra: dict[str, str] = {}
    declared = entry.parameters
    for key, value in given.items():
        if key in declared:
            continue
        close = difflib.get_close_matches(key, list(declared), n=1, cutoff=0.75)
        if close:
            raise InvalidParameterValue(
                f"entry point '{entry.name}' has no parameter '{key}' (did you mean '{close[0]}'?)"
            )
        if not _EXTRA_NAME.match(key):
            raise InvalidParameterValue(f"parameter name {key!r} is not a valid option name")
        extra[key] = coerce(Parameter(name=key), value)
    missing = [p.name for p in declared.values() if p.name not in given and not p.has_default]
    if missing:
        raise InvalidParameterValue(
            f"entry point '{entry.name}' needs parameter(s) {', '.join(missing)}: give them with -P name=value"
        )
    for p in declared.values():
        value = coerce(p, given[p.name] if p.name in given else p.default)
        if p.type == "path" and not urlparse(value).scheme:
            path = Path(value).expanduser()
            path = path if path.is_absolute() else root / path
            if not path.exists():
                raise ResourceDoesNotExist(f"parameter '{p.name}': no such file or folder: {value}")
            value = str(path.absolute())
        final[p.name] = value
    return final, extra


def shell_syntax(template: str) -> str | None:
    """The first shell-only construct of a command template (outside quotes), or None."""
    quote: str | None = None
    i = 0
    t = template.replace("\\\n", " ")
    while i < len(t):
        c = t[i]
        nxt = t[i + 1] if i + 1 < len(t) else ""
        if quote == "'":
            if c == "'":
                quote = None
        elif c == "\\":
            i += 1
        elif quote == '"':
            if c == '"':
                quote = None
            elif c == "`" or (c == "$" and (nxt in "({" or nxt.isalpha() or nxt == "_")):
                return c + (nxt if c == "$" else "")
        elif c in "'\"":
            quote = c
        elif c in ";|&<>`\n":
            return "newline" if c == "\n" else c
        elif c == "$" and (nxt in "({" or nxt.isalpha() or nxt == "_"):
            return c + nxt
        i += 1
    return None


def build_argv(entry: EntryPoint, final: dict[str, str], extra: dict[str, str]) -> list[str]:
    """The argument list the entry point runs (through `bash -c` only with `shell: true`)."""
    template = entry.command.strip()
    if entry.shell:
        quoted = {k: shlex.quote(v) for k, v in final.items()}
        cmd = _format(entry, template, quoted)
        cmd += "".join(f" --{k} {shlex.quote(v)}" for k, v in extra.items())
        return ["bash", "-c", cmd]
    bad = shell_syntax(template)
    if bad:
        raise InvalidParameterValue(
            f"{entry.where or entry.name}: the command of '{entry.name}' uses shell syntax ({bad}); gitml runs "
            "commands without a shell: split it into steps, or add 'shell: true' to the entry point"
        )
    try:
        tokens = shlex.split(template.replace("\\\n", " "), posix=True)
    except ValueError as e:
        raise InvalidParameterValue(
            f"{entry.where or entry.name}: command of '{entry.name}': {e}"
        ) from e
    argv = [_format(entry, tok, final) for tok in tokens]
    for k, v in extra.items():
        argv += [f"--{k}", v]
    if not argv:
        raise InvalidParameterValue(f"entry point '{entry.name}' has an empty command")
    return argv


def _format(entry: EntryPoint, text: str, values: dict[str, str]) -> str:
    for _, field_name, _, _ in string.Formatter().parse(text):
        if field_name is None:
            continue
        if field_name not in values:
            hint = did_you_mean(field_name, values)
            raise InvalidParameterValue(
                f"{entry.where or entry.name}: the command of '{entry.name}' uses {{{field_name}}}, "
                f"which is not a declared parameter{hint}"
            )
    try:
        return text.format_map(values)
    except (ValueError, IndexError, KeyError) as e:
        raise InvalidParameterValue(
            f"{entry.where or entry.name}: command of '{entry.name}': {e}"
        ) from e

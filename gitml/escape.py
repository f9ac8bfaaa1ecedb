"""Escaping of values read from a remote (run names, params, tags, model names) before they are
shown: one helper for markdown table cells (PR/MR comments, step summaries), one for terminals.

Values on the metadata branch and in tags are written by whoever can push; shown raw, a param
value can add rows, headings and remote images to a PR comment, or move a terminal's cursor,
recolour it and rewrite what was printed before.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_CELL", "markdown_cell", "terminal"]

MAX_CELL = 200  # characters of one markdown cell; the rest is cut with an ellipsis

# C0 and C1 controls, DEL, and the invisible characters that reorder or break lines
# (bidirectional overrides and isolates, line/paragraph separators, zero-width joiners).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _visible(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def terminal(value: Any) -> str:
    """`value` as text safe to print on a terminal: control characters and escape sequences
    are shown as visible escapes (`\\e[31m`, `\\n`, `\\u202e`), never interpreted."""
    text = value if isinstance(value, str) else str(value)
    return _CONTROL.sub(_visible, text)


# Markdown punctuation that starts markup inside a table cell (links and images `![x](u)`,
# HTML, code, emphasis, strikethrough, cell breaks), escaped with a backslash. `_` only where
# it could open emphasis, so `val_loss` stays as people write it.
_MD_PUNCT = re.compile(r"([\\`*\[\]<>|!~&#])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# Bare URLs and mentions are linked by GitHub and GitLab: a word joiner after the scheme's
# colon, `www` and `@` keeps them as text (it is invisible when rendered).
_AUTOLINK = re.compile(r"(?i)(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?<=@)")
_JOINER = "\u2060"


def _md_escape(m: re.Match[str]) -> str:
    return "\\" + m.group()


def markdown_cell(value: Any, limit: int = MAX_CELL) -> str:
    """`value` as inert text for one cell of a GitHub/GitLab markdown table: no new rows or
    lines, no HTML, no links, images, mentions or other markup; at most `limit` characters."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _CONTROL.sub(lambda m: " " if m.group() in "\r\n\t\u2028\u2029" else "", text)
    text = _MD_PUNCT.sub(_md_escape, text)
    return _AUTOLINK.sub(_JOINER, text)

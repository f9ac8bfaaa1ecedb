"""The documentation holds together: every link resolves, every path it names exists.

Checked: relative links (and their `#anchor`, by GitHub's heading slugs) in README.md,
CONTRIBUTING.md and docs/*.md; repository paths written as code (`gitml/store/repo.py`,
`schemas/run.schema.json`, `bench/bench_sync.py`); modules named as code (`gitml.store.sync.pull`:
the module, and the name in it); and every `docs/*.md` that the source code, the benchmarks or
the Makefile names.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
# A path into the repository written as inline code: a top-level folder, then a file name.
_CODE_PATH = re.compile(r"`((?:gitml|schemas|bench|tests|examples|scripts|docs)/[\w./-]*\.\w+)`")
_DOC_REF = re.compile(r"\bdocs/[\w./-]+\.md\b")


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a markdown file offers (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for heading in _HEADING.findall(_prose(path.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def _links(path: Path) -> list[str]:
    text = _INLINE_CODE.sub("", _prose(path.read_text()))
    return [m.group(1) for m in _LINK.finditer(text)]


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_documents_exist() -> None:
    for name in ("README.md", "CONTRIBUTING.md", "docs/storage-format.md", "docs/benchmarks.md"):
        assert (ROOT / name).is_file(), name


@pytest.mark.parametrize("doc", DOCS, ids=_id)
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in _links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {_id(dest)}")
    assert broken == []


@pytest.mark.parametrize("doc", DOCS, ids=_id)
def test_every_repository_path_named_in_code_exists(doc: Path) -> None:
    text = doc.read_text()
    missing = sorted(
        {
            p
            for p in _CODE_PATH.findall(text)
            if "<" not in p and "*" not in p and not (ROOT / p).exists()
        }
    )
    assert missing == []


_DOTTED = re.compile(r"`(gitml(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _module_file(parts: list[str]) -> Path | None:
    base = ROOT.joinpath(*parts)
    # a flavor's face (gitml.pytorch ...) has no source, only its type stub
    for candidate in (base.with_suffix(".py"), base / "__init__.py", base.with_suffix(".pyi")):
        if candidate.is_file():
            return candidate
    return None


def _defines(module: Path, name: str) -> bool:
    """Whether a module defines, imports or lazily exports `name` (read, not imported)."""
    text = module.read_text()
    return bool(
        re.search(rf"^\s*(?:async\s+)?(?:def|class)\s+{name}\b", text, re.M)
        or re.search(rf"^\s*{name}\s*[:=]", text, re.M)
        or re.search(rf"\bimport\b[^\n]*\b{name}\b", text)
        or re.search(rf"[\"']{name}[\"']", text)  # __all__, lazy tables
    )


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        module = _module_file(parts[:i])
        if module is not None:
            rest = parts[i:]
            return not rest or _defines(module, rest[0])
    return False


@pytest.mark.parametrize("doc", DOCS, ids=_id)
def test_every_module_named_exists(doc: Path) -> None:
    # `gitml.store.sync.pull`, `gitml.models.infer_signature`: modules, and the first name in
    # them; tag and config keys (`gitml.source.dirty`, `gitml.remote`) are not modules.
    names = set(_DOTTED.findall(_prose(doc.read_text())))
    modules = {n for n in names if _module_file(n.split(".")[:2]) is not None}
    assert sorted(n for n in modules if not _resolves(n)) == []


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 260


def _sources() -> list[Path]:
    files = [
        *(ROOT / "gitml").rglob("*.py"),
        *(ROOT / "bench").rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
    ]
    files += [ROOT / "Makefile", ROOT / "pyproject.toml"]
    return [f for f in files if f.is_file()]


def test_docs_named_by_the_code_exist() -> None:
    missing = sorted(
        f"{_id(src)}: {ref}"
        for src in _sources()
        for ref in set(_DOC_REF.findall(src.read_text(errors="replace")))
        if not (ROOT / ref).is_file()
    )
    assert missing == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Speed", "speed"),
        ("Tracking (bench/bench_tracking.py)", "tracking-benchbench_trackingpy"),
        (
            "`gitml diff`: what changed between two revisions",
            "gitml-diff-what-changed-between-two-revisions",
        ),
        (
            "Sharing: push, pull, and two clones registering at once",
            "sharing-push-pull-and-two-clones-registering-at-once",
        ),
        ("Request formats (MLflow's)", "request-formats-mlflows"),
    ],
)
def test_slugs_follow_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor

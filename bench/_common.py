"""Small helpers shared by the benchmarks in bench/: timing, medians, ratios, result tables.

Benchmarks run from the repository root with the bench virtual environment
(`make bench`); peers (MLflow, GTO, DVC) are imported lazily by each script and
skipped with a clear line when they are not installed.
"""

from __future__ import annotations

import importlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Summary",
    "fmt_bytes",
    "fmt_s",
    "git_init",
    "import_time",
    "median",
    "optional_import",
    "ratio",
    "section",
    "time_batches",
    "time_calls",
]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def median(values: Iterable[float]) -> float:
    """The median of some timings (the figure every bench quotes)."""
    return float(statistics.median(list(values)))


def fmt_s(seconds: float | None) -> str:
    """A duration with a unit that keeps three significant digits readable."""
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} us"


def fmt_bytes(n: float | None) -> str:
    """A size in B, KB (1000) or MB."""
    if n is None:
        return "-"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.2f} KB"
    return f"{n:.0f} B"


def ratio(slow: float | None, fast: float | None) -> str:
    """`slow / fast` as '12.3x' (how many times faster `fast` is)."""
    if not slow or not fast:
        return "-"
    return f"{slow / fast:.1f}x"


def section(title: str) -> None:
    """Print a section header."""
    print(f"\n## {title}", flush=True)


def time_calls(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Seconds taken by each of `repeat` calls of `fn`."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def time_batches(fn: Callable[[int], Any], batches: int, batch_size: int) -> list[float]:
    """Per-call seconds of `batches` batches of `batch_size` calls of `fn(i)` (i counts up)."""
    out = []
    i = 0
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(batch_size):
            fn(i)
            i += 1
        out.append((time.perf_counter() - t0) / batch_size)
    return out


def import_time(module: str, repeat: int, python: str | None = None) -> list[float]:
    """Wall seconds of `python -c 'import module'` in fresh interpreters (startup included)."""
    cmd = [python or sys.executable, "-c", f"import {module}" if module else "pass"]
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def optional_import(name: str) -> Any | None:
    """Import a peer lazily; print why it is skipped and return None when it is absent."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        print(f"{name} not installed: skipping the peer ({e})", flush=True)
        return None


def git(args: list[str], cwd: Path | str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run git with a fixed bench identity."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
        env={**os.environ, **GIT_ENV}, **kw,
    )  # fmt: skip


def git_init(path: Path) -> Path:
    """A fresh repository at `path` with one commit on its main branch."""
    path.mkdir(parents=True, exist_ok=True)
    git(["init", "-q", "-b", "main"], path)
    git(["config", "user.name", GIT_ENV["GIT_AUTHOR_NAME"]], path)
    git(["config", "user.email", GIT_ENV["GIT_AUTHOR_EMAIL"]], path)
    (path / "train.py").write_text("print('train')\n")
    git(["add", "train.py"], path)
    git(["commit", "-q", "-m", "init"], path)
    return path


@dataclass
class Summary:
    """The closing table: one line per target, with the measured value and PASS/FAIL."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, what: str, target: str, measured: str, ok: bool | None) -> None:
        """Record a line; ok=None means informational (no target)."""
        verdict = "-" if ok is None else ("PASS" if ok else "FAIL")
        self.rows.append((what, target, measured, verdict))

    def failed(self) -> int:
        """How many lines failed their target."""
        return sum(1 for r in self.rows if r[3] == "FAIL")

    def print(self, title: str = "Summary") -> None:
        """Print the table in Markdown, so it pastes into docs as is."""
        head = ("what", "target", "measured", "result")
        widths = [max(len(str(r[i])) for r in [head, *self.rows]) for i in range(4)]
        print(f"\n## {title}\n")
        print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for r in self.rows:
            print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        print(flush=True)

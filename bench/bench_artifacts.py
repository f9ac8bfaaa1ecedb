"""Artifact logging, side by side: gitml (DVC-format cache) vs `md5sum` and MLflow's file store.

    python bench/bench_artifacts.py [--size-mb 1024] [--files 1000] [--rounds 3]

Measures, in one run and interleaved round by round (so machine load hits every contender
alike), with `sync` before each timed call so no one pays for another's dirty pages:
  * log_artifact of one large file: gitml vs `md5sum` on the same file (hashing is the floor;
    target: within 1.5x) vs MLflow's file store `log_artifact`;
  * log_artifacts of a folder of small files: gitml vs MLflow's file store (target: as fast).
MLflow is imported lazily; without it those columns say so and gitml still runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.3f} s" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def _timed(fn: Callable[..., Any], *args: Any) -> float:
    os.sync()  # start from clean page cache writeback: nobody pays for another's writes
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def _make_big(path: Path, size_mb: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size_mb):
            f.write(i.to_bytes(8, "little") + block[8:])


def _make_small(folder: Path, n: int, tag: str) -> Path:
    # Distinct bytes per folder: deduplication would make a second log trivially fast.
    for i in range(n):
        p = folder / f"d{i % 20:02d}" / f"f{i:05d}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"small file {i} {tag}\n" * 8)
    return folder


def _mlflow(root: Path) -> Any:
    # MLflow 3 keeps its file store behind this switch; the file store is the peer measured.
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    try:
        import mlflow
    except ImportError:
        print("  MLflow is not installed here: its columns are skipped (use the bench venv).")
        return None
    mlflow.set_tracking_uri((root / "mlruns").as_uri())
    mlflow.set_experiment("bench")
    return mlflow


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print medians and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="size of the large file (default 1 GiB)")
    ap.add_argument("--files", type=int, default=1000, help="number of small files")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    import gitml

    work = Path(tempfile.mkdtemp(prefix="gitml-bench-artifacts-"))
    try:
        repo = work / "repo"
        repo.mkdir()
        env = {**os.environ, **GIT_ENV}
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=repo, check=True, env=env)
        os.environ.update(GIT_ENV)
        gitml.set_tracking_uri(str(repo))
        cache = repo / ".git" / "gitml" / "artifacts"
        mlflow = _mlflow(work)

        big = work / "big.bin"
        print(f"# artifacts bench: {args.size_mb} MiB file, {args.files} small files, {args.rounds} rounds")
        _make_big(big, args.size_mb)
        smalls = [
            (_make_small(work / f"cold{r}", args.files, f"c{r}"), _make_small(work / f"warm{r}", args.files, f"w{r}"))
            for r in range(args.rounds)
        ]
        md5sum = shutil.which("md5sum")

        with gitml.start_run():  # warm up imports and the first commit outside the timings
            gitml.log_text("warm", "warm.txt")
        if mlflow is not None:
            with mlflow.start_run():
                mlflow.log_text("warm", "warm.txt")

        keys = ("md5sum", "hash", "gitml", "gitml_dedup", "mlflow", "g_cold", "g_warm", "m_small")
        t: dict[str, list[float]] = {k: [] for k in keys}
        for r in range(args.rounds):
            if md5sum:
                t["md5sum"].append(_timed(lambda: subprocess.run([md5sum, str(big)], check=True, capture_output=True)))
            from gitml.artifacts.cache import hash_file

            t["hash"].append(_timed(lambda: hash_file(big)))
            shutil.rmtree(cache, ignore_errors=True)
            with gitml.start_run():
                t["gitml"].append(_timed(lambda: gitml.log_artifact(str(big), "ckpt")))
                t["gitml_dedup"].append(_timed(lambda: gitml.log_artifact(str(big), "ckpt-again")))
            if mlflow is not None:
                with mlflow.start_run():
                    t["mlflow"].append(_timed(lambda: mlflow.log_artifact(str(big), "ckpt")))
            cold, warm = smalls[r]
            shutil.rmtree(cache, ignore_errors=True)
            with gitml.start_run():
                # cold: an empty cache, so DVC's 256 prefix folders are made on the way
                t["g_cold"].append(_timed(gitml.log_artifacts, str(cold), "many"))
            with gitml.start_run():
                # warm: a cache in use (prefix folders exist), new bytes
                t["g_warm"].append(_timed(gitml.log_artifacts, str(warm), "many"))
            if mlflow is not None:
                with mlflow.start_run():
                    t["m_small"].append(_timed(mlflow.log_artifacts, str(cold), "many"))

        def med(key: str) -> float | None:
            return statistics.median(t[key]) if t[key] else None

        print(f"\n## log_artifact of one {args.size_mb} MiB file (median of {args.rounds})")
        print(f"  md5sum                    {_fmt(med('md5sum'))}")
        print(f"  hashlib md5 (gitml's)     {_fmt(med('hash'))}")
        print(f"  gitml log_artifact        {_fmt(med('gitml'))}   {_ratio(med('gitml'), med('md5sum'))} of md5sum (target <= 1.5x)")
        print(f"  gitml, same file again    {_fmt(med('gitml_dedup'))}   (unchanged inode/size/mtime: not re-read, stored once)")
        print(f"  MLflow file store         {_fmt(med('mlflow'))}   gitml/MLflow = {_ratio(med('gitml'), med('mlflow'))}")
        print(f"\n## log_artifacts of {args.files} small files (median of {args.rounds})")
        print(f"  gitml, cache in use       {_fmt(med('g_warm'))}   gitml/MLflow = {_ratio(med('g_warm'), med('m_small'))} (target <= 1x)")
        print(f"  gitml, empty cache        {_fmt(med('g_cold'))}   gitml/MLflow = {_ratio(med('g_cold'), med('m_small'))}")
        print(f"  MLflow file store         {_fmt(med('m_small'))}")
        print("\n  all timings (s): " + ", ".join(f"{k}={[round(x, 3) for x in v]}" for k, v in t.items() if v))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

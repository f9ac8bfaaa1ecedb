"""Benchmark: `gitml run` overhead beside `mlflow run`, provenance of DVC-tracked data, reproduce.

Measures, on real repositories in a temporary folder:

- `gitml run` overhead (its wall time minus the child's own) against
  `mlflow run --env-manager local` on the same project in the same run (target: >= 10x less);
- provenance of a project with 1,000 DVC-tracked files (one folder pointer, and 1,000
  `.dvc` pointers) against `dvc status` on the same repository (target: under 50 ms);
- `gitml reproduce` overhead beyond the child's own time (target: under 5 s).

Usage: python bench/bench_projects.py [--repeat 5] [--files 1000] [--no-mlflow] [--no-dvc]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

__all__ = ["main"]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
MLPROJECT = """\
name: bench
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.1}
    command: "python child.py --alpha {alpha}"
"""
CHILD = "import sys\n"


def sh(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed: {proc.stderr[-800:]}")
    return proc


def timed(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def fmt(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def make_project(root: Path) -> Path:
    root.mkdir(parents=True)
    sh("git", "init", "-q", "-b", "main", cwd=root)
    (root / "MLproject").write_text(MLPROJECT)
    (root / "child.py").write_text(CHILD)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-q", "-m", "project", cwd=root, env={**os.environ, **GIT_ENV})
    return root


def bench_run(tmp: Path, repeat: int, with_mlflow: bool) -> None:
    print("\n## gitml run overhead (wall time minus the child's own)")
    root = make_project(tmp / "run")
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT)}
    child = timed(
        lambda: sh(sys.executable, "child.py", "--alpha", "0.1", cwd=root, env=env), repeat
    )
    gitml = timed(
        lambda: sh(sys.executable, "-m", "gitml", "run", ".", "-P", "alpha=0.2", cwd=root, env=env),
        repeat,
    )
    print(f"child alone: {fmt(child)}; gitml run: {fmt(gitml)}; overhead {fmt(gitml - child)}")
    mlflow = Path(sys.executable).parent / "mlflow"
    if not with_mlflow or not mlflow.exists():
        print("mlflow run: skipped (MLflow is not installed in this environment)")
        return
    store = tmp / "mlruns"
    menv = {
        **env,
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_TRACKING_URI": store.as_uri(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    ml = timed(
        lambda: sh(
            str(mlflow), "run", ".", "--env-manager", "local", "-P", "alpha=0.2", cwd=root, env=menv
        ),
        repeat,
    )
    ratio = (ml - child) / max(gitml - child, 1e-9)
    print(
        f"mlflow run: {fmt(ml)}; overhead {fmt(ml - child)}; gitml's overhead is {ratio:.1f}x less (target >= 10x)"
    )


def bench_provenance(tmp: Path, files: int, repeat: int, with_dvc: bool) -> None:
    from gitml.projects.provenance import code_provenance, data_provenance

    print(f"\n## provenance of {files} DVC-tracked files")
    env = {**os.environ, **GIT_ENV}
    for layout in ("folder", "pointers"):
        root = make_project(tmp / f"prov-{layout}")
        data = root / "data"
        data.mkdir()
        for i in range(files):
            (data / f"f{i:05d}.csv").write_text(f"{i}\n")
        if with_dvc:
            sh(sys.executable, "-m", "dvc", "init", "-q", cwd=root, env=env)
            targets = (
                ["data"] if layout == "folder" else [f"data/f{i:05d}.csv" for i in range(files)]
            )
            sh(sys.executable, "-m", "dvc", "add", "-q", *targets, cwd=root, env=env)
        else:  # DVC's pointer format, written directly
            import hashlib

            if layout == "folder":
                (root / "data.dvc").write_text(
                    f"outs:\n- md5: {'0' * 32}.dir\n  path: data\n  nfiles: {files}\n"
                )
            else:
                for i in range(files):
                    md5 = hashlib.md5(f"{i}\n".encode()).hexdigest()
                    (data / f"f{i:05d}.csv.dvc").write_text(
                        f"outs:\n- md5: {md5}\n  size: 2\n  hash: md5\n  path: f{i:05d}.csv\n"
                    )
        sh("git", "add", "-A", cwd=root)
        sh("git", "commit", "-q", "-m", "data", cwd=root, env=env)
        # As a run reads it: untracked and changed files come from the code provenance's
        # `git status`, and the pointer cache sits in the state folder (filled by a first run).
        changed: set[str] = set()
        untracked = code_provenance(root, changed)[2]
        cache = tmp / f"pointercache-{layout}.json"

        def data(
            root: Path = root, u: list[str] = untracked, c: set[str] = changed, f: Path = cache
        ) -> dict[str, str]:
            return data_provenance(root, root, u, c, f)

        def whole(root: Path = root, f: Path = cache) -> dict[str, str]:
            c: set[str] = set()
            return data_provenance(root, root, code_provenance(root, c)[2], c, f)

        first = time.perf_counter()
        found = data()
        first = time.perf_counter() - first
        t = timed(data, repeat)
        cpu = []
        for _ in range(repeat):  # this process's CPU time: what the machine's load does not inflate
            c = time.process_time()
            data()
            cpu.append(time.process_time() - c)
        uncached = timed(lambda root=root, u=untracked: data_provenance(root, root, u), repeat)
        both = timed(whole, repeat)
        line = (
            f"{layout:<8}: {len(found)} hashes read in {fmt(t)} wall, {fmt(statistics.median(cpu))} CPU"
            f" (target < 50 ms; first run, filling the cache: {fmt(first)}; without the cache:"
            f" {fmt(uncached)}); with the code provenance's git calls {fmt(both)}"
            f" (load {os.getloadavg()[0]:.1f})"
        )
        if with_dvc:
            d = timed(
                lambda root=root: sh(
                    sys.executable, "-m", "dvc", "status", "-q", cwd=root, env=env
                ),
                max(1, repeat // 2),
            )
            line += f"; dvc status: {fmt(d)} ({d / t:.0f}x)"
        print(line)


def bench_reproduce(tmp: Path, repeat: int) -> None:
    print("\n## gitml reproduce overhead (wall time minus the child's own)")
    root = make_project(tmp / "repro")
    env = {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT)}
    out = sh(sys.executable, "-m", "gitml", "run", ".", cwd=root, env=env).stdout
    run_id = out.split()[-2]
    child = timed(
        lambda: sh(sys.executable, "child.py", "--alpha", "0.1", cwd=root, env=env), repeat
    )
    rep = timed(
        lambda: sh(sys.executable, "-m", "gitml", "reproduce", run_id, cwd=root, env=env), repeat
    )
    print(f"reproduce: {fmt(rep)}; overhead {fmt(rep - child)} (target < 5 s)")
    # a run in a virtualenv: reproduce reuses the cached environment (same python_env.yaml)
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    (root / "MLproject").write_text("python_env: python_env.yaml\n" + MLPROJECT)
    (root / "python_env.yaml").write_text(f"python: '{py}'\ndependencies: []\n")
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-q", "-m", "venv", cwd=root, env=env)
    venv_env = ["--env-manager", "virtualenv"]
    out = sh(sys.executable, "-m", "gitml", "run", ".", *venv_env, cwd=root, env=env).stdout
    run_id = out.split()[-2]
    rep = timed(
        lambda: sh(sys.executable, "-m", "gitml", "reproduce", run_id, cwd=root, env=env), repeat
    )
    print(f"reproduce, cached virtualenv: {fmt(rep)}; overhead {fmt(rep - child)} (target < 5 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--no-mlflow", action="store_true")
    ap.add_argument("--no-dvc", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-projects-"))
    try:
        bench_run(tmp, args.repeat, not args.no_mlflow)
        bench_provenance(tmp, args.files, args.repeat, not args.no_dvc)
        bench_reproduce(tmp, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark: what CI pays for gitml's deploy resolution and its sticky comment.

- Deploy resolution: `gitml deployments plan --tag ... --stage production` as a new process
  in a repository with 10,000 registry tags (1,000 models, built as bench_registry.py builds
  them), cold (no tag index yet: a fresh CI clone) and warm; target under 1 s. Wall time and
  the process's CPU time (user + system) are printed with the load average: on a shared
  machine the wall time is mostly waiting for a core. GTO's
  `gto show NAME#stage` took 58 s on the same repository (bench_registry.py).
- An unchanged comment: API calls made, by kind (target: one list call, no write).
- 8 `gitml ci comment` processes started at once on one pull request, all listing before any
  creates (the worst race): comments left (target: exactly one).
The API is the test suite's local GitHub/GitLab server (tests/ci/fake_api.py) on 127.0.0.1.
Usage: python bench/bench_ci.py [--models N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_registry import _ENV, GITML, build_repo  # noqa: E402

__all__ = ["main"]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    took, _, out = _timed(args, cwd, env)
    return took, out


def _timed(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child: user + system, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env=env or _ENV, timeout=600
    )
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[3:])} failed: {proc.stderr.strip()[:500]}")
    return took, cpu, proc.stdout


def bench_deploy(models: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="gitml-bench-ci-") as tmp:
        repo = Path(tmp) / "repo"
        ntags = build_repo(repo, models)
        target = f"model-{models // 2:04d}"
        fired = f"{target}#production!#4"  # the rollback tag: v1 is current again
        args = [*GITML, "deployments", "plan", "--tag", fired, "--stage", "production"]
        load = os.getloadavg()[0]
        cold, cold_cpu, out = _timed(args, repo)
        assert "deploy=true" in out and "version=1" in out, out
        runs = [_timed(args, repo) for _ in range(repeat)]
        wall, cpu = [r[0] for r in runs], [r[1] for r in runs]
        # A bare interpreter start, measured the same way: what any new process pays.
        bare = [_timed([sys.executable, "-c", "pass"], repo) for _ in range(repeat)]
        print(f"deploy plan, {ntags} tags, new process (load average {load:.1f} -> "
              f"{os.getloadavg()[0]:.1f}): cold {cold:.3f} s wall / {cold_cpu:.3f} s CPU; warm "
              f"median {statistics.median(wall):.3f} s wall (min {min(wall):.3f}, max "
              f"{max(wall):.3f}, n={repeat}), median CPU {statistics.median(cpu):.3f} s; "
              f"`python -c pass`: {statistics.median(b[0] for b in bare):.3f} s wall, "
              f"{statistics.median(b[1] for b in bare):.3f} s CPU")  # fmt: skip


def _comment_env(base: str, event: Path) -> dict[str, str]:
    return {
        **_ENV, "GITHUB_ACTIONS": "true", "GITHUB_API_URL": base, "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_TOKEN": "actions-token", "GITHUB_EVENT_PATH": str(event),
    }  # fmt: skip


def bench_comment() -> None:
    from tests.ci.fake_api import FakeApi, serve

    with tempfile.TemporaryDirectory(prefix="gitml-bench-ci-") as tmp:
        cwd = Path(tmp)
        event = cwd / "event.json"
        event.write_text(json.dumps({"pull_request": {"number": 7}}))
        body = cwd / "report.md"
        body.write_text("| metric | old | new |\n|---|---|---|\n| accuracy | 0.91 | 0.93 |\n")
        args = [*GITML, "ci", "comment", "--body-file", str(body)]
        with serve(FakeApi()) as api:
            for i in range(150):
                api.add(f"review remark {i}", "bob")
            env = _comment_env(api.base, event)
            _run(args, cwd, env)
            api.log.clear()
            took, out = _run(args, cwd, env)
            kinds: dict[str, int] = {}
            for method, path in api.log:
                key = f"{method} {'list' if path.endswith('/comments') else 'user' if path == '/user' else 'one'}"
                kinds[key] = kinds.get(key, 0) + 1
            writes = sum(n for k, n in kinds.items() if not k.startswith("GET"))
            print(f"unchanged comment on a 151-comment PR ({out.strip()}): {took:.3f} s, calls {kinds}, writes {writes}")  # fmt: skip

        with serve(FakeApi()) as api:
            api.list_gate = threading.Barrier(8)
            env = _comment_env(api.base, event)
            start = time.perf_counter()
            procs = [
                subprocess.Popen(
                    args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
                for _ in range(8)
            ]
            codes = [p.wait(timeout=120) for p in procs]
            for p in procs:
                p.stdout.close()  # type: ignore[union-attr]
                p.stderr.close()  # type: ignore[union-attr]
            took = time.perf_counter() - start
            marked = [
                c for c in api.comments.values() if c["body"].startswith("<!-- gitml:ci-comment")
            ]
            print(f"8 concurrent comment jobs: exit codes {codes}, creates {len(api.calls('POST'))}, "
                  f"deletes {len(api.calls('DELETE'))}, comments left {len(marked)}, {took:.2f} s")  # fmt: skip
            assert len(marked) == 1


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    bench_deploy(args.models, args.repeat)
    bench_comment()


if __name__ == "__main__":
    main()

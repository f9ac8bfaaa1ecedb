"""Benchmark: push, pull, merge and diff of a metadata branch holding 10,000 runs, beside DVC.

Measures, on real repositories and a bare remote in a temporary folder:

- `gitml push` and `gitml pull` when one run of 10,000 changed (target: under 1 s each);
- the merge of two sides that each added 1,000 runs (target: under 2 s), alone and as a pull;
- `gitml diff` between two commits with 10,000 runs on the branch (target: under 200 ms);
- DVC's `dvc exp push` / `dvc exp pull` of one new experiment on a remote holding
  `--dvc-exps` experiments, with gitml doing the same on the same count, in the same run.

Usage: python bench/bench_sync.py [--runs 10000] [--repeat 5] [--dvc-exps 20] [--no-dvc]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gitml.store.merge import merge_trees  # noqa: E402
from gitml.store.repo import GitRepo  # noqa: E402
from gitml.store.sync import pull as _pull  # noqa: E402
from gitml.store.sync import push as _push  # noqa: E402
from gitml.tracking.branch_rules import BRANCH_RULES  # noqa: E402

__all__ = ["main"]


def pull(repo: GitRepo) -> object:
    return _pull(repo, rules=BRANCH_RULES)


def push(repo: GitRepo) -> object:
    return _push(repo, rules=BRANCH_RULES)


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def jdump(obj: object) -> bytes:
    return (json.dumps(obj, sort_keys=True, indent=1) + "\n").encode()


def run_files(run_id: str, commit: str | None, value: float) -> dict[str, bytes | None]:
    d = f"runs/{run_id[:2]}/{run_id}"
    meta = {
        "run_id": run_id, "experiment_id": "0", "run_name": f"r{run_id[:6]}", "status": "FINISHED",
        "start_time": 1_700_000_000_000, "end_time": 1_700_000_001_000 + int(value * 1000),
        "lifecycle_stage": "active", "user_id": "bench", "artifact_uri": f"runs:/{run_id}",
        "source": {"commit": commit, "branch": "main", "dirty": False, "entry_point": "train.py", "repo_url": None},
        "journal": {},
    }  # fmt: skip
    return {
        f"{d}/meta.json": jdump(meta),
        f"{d}/params.json": jdump({"lr": str(value), "epochs": "3"}),
        f"{d}/tags.json": jdump({"mlflow.source.git.commit": commit} if commit else {}),
        f"{d}/metrics.json": jdump({"accuracy": {"value": value, "timestamp": 1, "step": 0}}),
    }


def add_runs(
    repo: GitRepo, n: int, commit_for: Callable[[int], str | None] = lambda i: None
) -> list[str]:
    ids = [uuid.uuid4().hex for _ in range(n)]
    changes: dict[str, bytes | None] = {"gitml.yaml": b"format: 1\n"}
    by_commit: dict[str, dict[str, int]] = {}
    for i, run_id in enumerate(ids):
        files = run_files(run_id, commit_for(i), (i % 997) / 997)
        changes.update(files)
        commit = commit_for(i)
        if commit:  # a finished run is listed under its source commit, as gitml writes it
            end = json.loads(files[f"runs/{run_id[:2]}/{run_id}/meta.json"] or b"{}")["end_time"]
            by_commit.setdefault(commit, {})[run_id] = end
    for commit, runs in by_commit.items():
        changes[f"commits/{commit[:2]}/{commit}.json"] = jdump(runs)
    repo.commit(lambda tree: changes, f"{n} runs")
    return ids


def _cpu() -> float:
    # This process and the git processes it waited for: wall time on a shared, loaded
    # machine says more about the neighbours than about the code.
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


CPU: list[float] = []  # the median CPU time of the last median_of


def median_of(fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None) -> float:
    times, cpus = [], []
    for _ in range(repeat):
        if setup is not None:
            setup()
        t, c = time.perf_counter(), _cpu()
        fn()
        times.append(time.perf_counter() - t)
        cpus.append(_cpu() - c)
    CPU[:] = [statistics.median(cpus)]
    return statistics.median(times)


def report(name: str, seconds: float, target: float | None = None, peer: float | None = None) -> None:
    line = f"{name:<58} {seconds * 1000:9.1f} ms (cpu {CPU[0] * 1000:6.1f} ms)"
    if target is not None:
        line += f"   target < {target * 1000:.0f} ms: {'ok' if seconds < target else 'MISSED'}"
    if peer is not None:
        line += f"   DVC {peer * 1000:.0f} ms, gitml is {peer / seconds:.1f}x faster"
    print(line, flush=True)


def bench_gitml(work: Path, n_runs: int, repeat: int) -> None:
    print(f"== gitml, {n_runs} runs on the branch ==", flush=True)
    seed = work / "seed"
    seed.mkdir()
    git("init", "-q", "-b", "main", cwd=seed)
    (seed / "train.py").write_text("v1\n")
    git("add", "train.py", cwd=seed)
    git("commit", "-q", "-m", "v1", cwd=seed)
    c1 = git("rev-parse", "HEAD", cwd=seed).strip()
    (seed / "train.py").write_text("v2\n")
    git("commit", "-q", "-am", "v2", cwd=seed)
    c2 = git("rev-parse", "HEAD", cwd=seed).strip()
    repo = GitRepo(seed, "gitml")
    t = time.perf_counter()
    add_runs(repo, n_runs, lambda i: c1 if i == 0 else c2 if i == 1 else None)
    print(f"(set-up: wrote {n_runs} runs in {time.perf_counter() - t:.1f} s)", flush=True)
    git("repack", "-adq", cwd=seed)
    bare = work / "remote.git"
    git("init", "-q", "--bare", str(bare), cwd=work)
    git("remote", "add", "origin", str(bare), cwd=seed)
    t = time.perf_counter()
    push(repo)
    print(f"(set-up: first push of {n_runs} runs in {time.perf_counter() - t:.2f} s)", flush=True)
    git("clone", "-q", str(bare), str(work / "b"), cwd=work)
    other = GitRepo(work / "b", "gitml")
    pull(other)

    def change_one(r: GitRepo) -> None:
        rid = uuid.uuid4().hex
        r.commit(lambda tree: run_files(rid, None, 0.5), "one run")

    report(
        f"push, one run changed of {n_runs}",
        median_of(lambda: push(repo), repeat, lambda: change_one(repo)),
        1.0,
    )

    def remote_moved() -> None:
        change_one(repo)
        push(repo)

    report(
        f"pull, one run changed of {n_runs}",
        median_of(lambda: pull(other), repeat, remote_moved),
        1.0,
    )
    report("push/pull when nothing changed (no-op)", median_of(lambda: push(other), repeat), None)

    # Two sides that each added 1,000 runs since their common base.
    base = repo.tip()
    assert base is not None
    base_tree = repo.tree_of(base)
    ours = add_runs(repo, 1000)
    del ours
    ours_tree = repo.tree_of(repo.tip())
    theirs_tree = repo.apply(
        base_tree,
        {k: v for i in range(1000) for k, v in run_files(uuid.uuid4().hex, None, 0.1).items()},
    )
    report(
        "merge of two sides each adding 1,000 runs (tree merge)",
        median_of(lambda: merge_trees(repo, base_tree, ours_tree, theirs_tree, rules=BRANCH_RULES.merge), repeat),
        2.0,
    )

    def diverge() -> None:
        pull(other)
        add_runs(other, 1000)
        push(other)
        add_runs(repo, 1000)

    report(
        "pull merging 1,000 remote runs into 1,000 local ones",
        median_of(lambda: pull(repo), max(1, repeat // 2), diverge),
        2.0,
    )

    # gitml diff between two commits: first with no query index (a fresh CI clone: the
    # branch's commit map), then through the index once it is built.
    from gitml.ci.diff import diff_runs
    from gitml.tracking.tracker import get_tracker, reset_all

    index_file = repo.state_dir / "index.sqlite"
    index_file.unlink(missing_ok=True)
    d = diff_runs(c1, c2, tracking_uri=str(seed))
    assert d.metrics, "the two runs differ in accuracy"
    report(f"diff between two commits, {n_runs} runs (no index: commit map)", median_of(
        lambda: diff_runs(c1, c2, tracking_uri=str(seed)), repeat), 0.2)
    t = time.perf_counter()
    get_tracker(str(seed)).index()
    print(f"(set-up: building the query index of {n_runs} runs: {time.perf_counter() - t:.2f} s)", flush=True)
    report(f"diff between two commits, {n_runs} runs (query index)", median_of(
        lambda: diff_runs(c1, c2, tracking_uri=str(seed)), repeat), 0.2)
    reset_all()
    repo.close()
    other.close()


def bench_dvc(work: Path, n: int, repeat: int) -> tuple[float, float] | None:
    """Median `dvc exp push` and `dvc exp pull` of one new experiment with `n` already on the remote."""
    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    if not Path(dvc).exists():
        print("(dvc not found: peer not measured)")
        return None
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}

    def run(*args: str, cwd: Path) -> None:
        subprocess.run([dvc, *args], cwd=cwd, check=True, capture_output=True, env=env)

    print(f"== DVC, {n} experiments on the remote ==", flush=True)
    bare = work / "dvc-remote.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=work)
    a = work / "dvc-a"
    a.mkdir()
    git("init", "-q", "-b", "main", cwd=a)
    run("init", "-q", cwd=a)
    (a / "params.yaml").write_text("lr: 0.1\n")
    git("add", "-A", cwd=a)
    git("commit", "-q", "-m", "init", cwd=a)
    git("remote", "add", "origin", str(bare), cwd=a)
    git("push", "-q", "origin", "main", cwd=a)
    t = time.perf_counter()
    for i in range(n):
        (a / "params.yaml").write_text(f"lr: {i}\n")
        run("exp", "save", "-f", "-n", f"e{i}", cwd=a)
    print(f"(set-up: {n} dvc exp save in {time.perf_counter() - t:.1f} s)", flush=True)
    run("exp", "push", "--no-cache", "origin", "-A", cwd=a)
    git("clone", "-q", str(bare), str(work / "dvc-b"), cwd=work)
    b = work / "dvc-b"
    run("exp", "pull", "--no-cache", "origin", "-A", cwd=b)
    counter = [n]

    def new_exp() -> None:
        counter[0] += 1
        (a / "params.yaml").write_text(f"lr: {counter[0]}\n")
        run("exp", "save", "-f", "-n", f"e{counter[0]}", cwd=a)

    push_s = median_of(
        lambda: run("exp", "push", "--no-cache", "origin", "-A", cwd=a), repeat, new_exp
    )
    report(f"dvc exp push -A, one new of {n}", push_s)

    def pushed_new() -> None:
        new_exp()
        run("exp", "push", "--no-cache", "origin", "-A", cwd=a)

    pull_s = median_of(
        lambda: run("exp", "pull", "--no-cache", "origin", "-A", cwd=b), repeat, pushed_new
    )
    report(f"dvc exp pull -A, one new of {n}", pull_s)
    return push_s, pull_s


def bench_gitml_small(work: Path, n: int, repeat: int, peer: tuple[float, float] | None) -> None:
    print(f"== gitml, {n} runs (the DVC experiment count) ==", flush=True)
    a = work / "small-a"
    a.mkdir()
    git("init", "-q", "-b", "main", cwd=a)
    git("commit", "-q", "--allow-empty", "-m", "init", cwd=a)
    bare = work / "small.git"
    git("init", "-q", "--bare", str(bare), cwd=work)
    git("remote", "add", "origin", str(bare), cwd=a)
    git("push", "-q", "origin", "main", cwd=a)
    ra = GitRepo(a, "gitml")
    add_runs(ra, n)
    push(ra)
    git("clone", "-q", str(bare), str(work / "small-b"), cwd=work)
    rb = GitRepo(work / "small-b", "gitml")
    pull(rb)
    push_s = median_of(lambda: push(ra), repeat, lambda: add_runs(ra, 1))
    report(f"push, one new run of {n}", push_s, 1.0, peer[0] if peer else None)

    def pushed_new() -> None:
        add_runs(ra, 1)
        push(ra)

    pull_s = median_of(lambda: pull(rb), repeat, pushed_new)
    report(f"pull, one new run of {n}", pull_s, 1.0, peer[1] if peer else None)


def main() -> None:
    """Run the benchmark and print medians (and ratios against DVC)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dvc-exps", type=int, default=20)
    parser.add_argument("--no-dvc", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitml-bench-sync-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
        os.environ.update({"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "DVC_NO_ANALYTICS": "1"})
        bench_gitml(work, args.runs, args.repeat)
        peer = None if args.no_dvc else bench_dvc(work, args.dvc_exps, args.repeat)
        bench_gitml_small(work, args.dvc_exps, args.repeat, peer)


if __name__ == "__main__":
    main()

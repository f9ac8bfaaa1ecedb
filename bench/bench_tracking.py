"""Tracking speed: gitml beside MLflow's sqlite store and its legacy file store, in one run.

Run from the repository root with the bench environment (`make bench`, or
`.venv-bench/bin/python bench/bench_tracking.py`). MLflow is imported lazily; without it
the peer columns are skipped. Every store lives in a fresh temporary folder.

  --quick   a smoke run with small counts (about a minute)
  (none)    the figures of the issue: 10,000 runs for start/end and search
  --scale   also 100,000 synthetic runs: search time and packed size per run

Synthetic runs (10,000 and 100,000) hold exactly the files gitml writes for a run of
20 params and 10 metrics: they are made by gitml's own `merge_run_files` (schema-checked
`layout.encode`); the first batch is committed with gitml's `GitRepo.commit`, the rest by
`git fast-import` in one commit per batch (same bytes, same paths, so the same trees: the
bench checks it once). MLflow's sqlite store gets the same runs: the first ones through
its client, the rest as rows copied from those (same tables, same columns).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    GIT_ENV,
    Summary,
    fmt_bytes,
    fmt_s,
    git,
    git_init,
    import_time,
    median,
    optional_import,
    ratio,
    section,
    time_batches,
)

ROOT = Path(__file__).resolve().parent.parent
N_PARAMS, N_METRICS = 20, 10
T0 = 1_700_000_000_000  # synthetic start times (ms)
FILTER = "metrics.m0 > 0.5 AND params.p0 = '3'"
ORDER_BY = ["metrics.m1 DESC"]
EXPERIMENT = "bench"


# -- the runs every store gets ---------------------------------------------------------------
def run_data(i: int) -> tuple[str, dict[str, str], dict[str, float], dict[str, str], int]:
    """Run number i: (name, params, metrics, tags, start_time), the same in every store."""
    rng = random.Random(i)
    params = {"p0": str(i % 10)}
    params.update(
        {
            f"p{j}": f"{rng.choice(['adam', 'sgd', 'lion'])}-{rng.randrange(10_000)}"
            for j in range(1, N_PARAMS)
        }
    )
    metrics = {f"m{j}": rng.random() for j in range(N_METRICS)}
    name = f"run-{i}"
    tags = {
        "mlflow.runName": name,
        "mlflow.source.name": "train.py",
        "mlflow.source.type": "LOCAL",
        "mlflow.source.git.commit": f"{rng.getrandbits(160):040x}",
        "mlflow.source.git.branch": "main",
        "mlflow.user": "bench",
        "gitml.source.dirty": "false",
    }
    return name, params, metrics, tags, T0 + i * 60_000


def run_id_of(i: int, salt: str) -> str:
    return f"{random.Random(f'{salt}-{i}').getrandbits(128):032x}"


# -- gitml: synthetic runs -------------------------------------------------------------------
def gitml_run_files(repo: Any, exp_id: str, i: int, run_id: str) -> dict[str, bytes]:
    """The files gitml writes for a finished run (created, 20 params, 10 metrics, ended)."""
    from gitml.store.objects import EMPTY_TREE
    from gitml.tracking.writer import Pending, merge_run_files

    name, params, metrics, tags, start = run_data(i)
    p = Pending()
    p.meta = {
        "run_id": run_id,
        "experiment_id": exp_id,
        "run_name": name,
        "status": "FINISHED",
        "start_time": start,
        "end_time": start + 30_000,
        "lifecycle_stage": "active",
        "user_id": "bench",
        "artifact_uri": f"runs:/{run_id}",
        "source": {
            "commit": tags["mlflow.source.git.commit"],
            "branch": "main",
            "dirty": False,
            "entry_point": "train.py",
            "repo_url": None,
            "type": "LOCAL",
        },
    }
    p.params = dict(params)
    p.tags = dict(tags)
    p.points = [(k, v, start + 1000, 0) for k, v in metrics.items()]
    p.seq = 1 + len(tags) + len(params) + len(metrics) + 1
    p.compact = True
    token = f"{random.Random(run_id).getrandbits(32):08x}"
    return {
        k: v
        for k, v in merge_run_files(repo, EMPTY_TREE, run_id, token, p).items()
        if v is not None
    }


def fast_import(
    repo_root: Path, ref: str, parent: str, files: dict[str, bytes], message: str
) -> None:
    """One commit of `files` on top of `parent`, written by `git fast-import` into a pack."""
    out = [f"commit {ref}\ncommitter bench <bench@example.com> {int(time.time())} +0000\n".encode()]
    msg = message.encode()
    out.append(b"data %d\n%s\nfrom %s\n" % (len(msg), msg, parent.encode()))
    for path, data in files.items():
        out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    out.append(b"done\n")
    subprocess.run(
        ["git", "fast-import", "--quiet", "--done"],
        cwd=repo_root,
        input=b"".join(out),
        check=True,
        env={**os.environ, **GIT_ENV},
    )


def build_gitml_runs(root: Path, n: int, batch: int, info: dict[str, Any]) -> tuple[str, list[str]]:
    """Put `n` finished runs in experiment 'bench' of the repo at `root`; returns (exp id, run ids)."""
    import gitml
    from gitml.tracking.tracker import get_tracker

    gitml.set_tracking_uri(str(root))
    exp_id = gitml.set_experiment(EXPERIMENT).experiment_id
    repo = get_tracker(str(root)).repo
    run_ids = [run_id_of(i, "gitml") for i in range(n)]
    t_encode = t_commit = 0.0
    checked = None
    t_all = time.perf_counter()
    for b, lo in enumerate(range(0, n, batch)):
        t0 = time.perf_counter()
        changes: dict[str, bytes] = {}
        for i in range(lo, min(n, lo + batch)):
            changes.update(gitml_run_files(repo, exp_id, i, run_ids[i]))
        t1 = time.perf_counter()
        t_encode += t1 - t0
        msg = f"bench: {min(n, lo + batch) - lo} synthetic runs"
        if b == 0:  # gitml's own commit path, timed
            repo.commit(lambda tree, c=changes: c, msg)  # type: ignore[misc]
            info["gitml_commit_batch_s"] = time.perf_counter() - t1
            info["gitml_commit_batch_runs"] = min(n, batch)
        else:
            tip = repo.tip()
            assert tip is not None
            fast_import(root, repo.ref, tip, changes, msg)
            if checked is None:  # same bytes, same paths: the tree gitml would have made
                expected = repo.apply(repo.tree_of(tip), changes)
                checked = expected == repo.tree_of(repo.tip())
                info["fast_import_tree_matches"] = checked
        t_commit += time.perf_counter() - t1
    info["build_s"] = time.perf_counter() - t_all
    info["encode_per_run_s"] = t_encode / max(n, 1)
    return exp_id, run_ids


REPACK_WINDOW = 10  # git's default; 250 is what `git gc --aggressive` uses (--repack-window)


def pack_size(root: Path) -> int:
    """Bytes in the repository's pack after `git repack -adf` (everything reachable, deltas anew)."""
    git(["repack", "-adfq", f"--window={REPACK_WINDOW}", "--depth=50"], root)
    return sum(p.stat().st_size for p in (root / ".git" / "objects" / "pack").glob("*.pack"))


def packed_bytes_between(root: Path, old: str, new: str) -> int:
    """Packed bytes (after delta compression) of the objects reachable from `new` but not `old`."""
    objs = git(["rev-list", "--objects", f"{old}..{new}"], root).stdout
    shas = "".join(line[:40] + "\n" for line in objs.splitlines() if line)
    sizes = git(["cat-file", "--batch-check=%(objectsize:disk)"], root, input=shas).stdout.split()
    return sum(int(s) for s in sizes)


def real_run_cost(root: Path, before: int, tip0: str, tip1: str, reps: int) -> tuple[float, float]:
    """Per run made through the API since `tip0`: (growth of the repacked pack, packed size of its objects).

    Both after `git repack -adf`. They differ because adding objects changes which objects
    git deltifies against which (it keeps the newest version of a tree whole); the growth of
    the whole pack is what the branch costs.
    """
    growth = (pack_size(root) - before) / reps
    attributed = packed_bytes_between(root, tip0, tip1) / reps
    print(
        f"{reps} real runs (their commits, trees, blobs): the pack grew {fmt_bytes(growth)} per run; "
        f"their own objects take {fmt_bytes(attributed)} per run as packed"
    )
    return growth, attributed


# -- the three sections that run the same workload on each store ------------------------------
def gitml_start_end(params: dict[str, str], metrics: dict[str, float]) -> None:
    import gitml

    with gitml.start_run():
        gitml.log_params(params)
        gitml.log_metrics(metrics, step=0)


def mlflow_start_end(mlflow: Any, params: dict[str, str], metrics: dict[str, float]) -> None:
    with mlflow.start_run():
        mlflow.log_params(params)
        mlflow.log_metrics(metrics, step=0)


def start_end_times(fn: Any, reps: int) -> list[float]:
    out = []
    for k in range(reps):
        _, params, metrics, _, _ = run_data(10_000_000 + k)
        t0 = time.perf_counter()
        fn(params, metrics)
        out.append(time.perf_counter() - t0)
    return out


def search_times(fn: Any, reps: int) -> tuple[list[float], Any]:
    out, result = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t0)
    return out, result


def gitml_search(client: Any, exp_id: str) -> Any:
    return client.search_runs([exp_id], FILTER, order_by=ORDER_BY, max_results=1000)


def gitml_fluent_search(exp_id: str) -> Any:
    import gitml

    return gitml.search_runs(
        [exp_id], FILTER, order_by=ORDER_BY, max_results=1000, output_format="list"
    )


# -- MLflow: filling its stores with the same runs --------------------------------------------
def mlflow_client_runs(client: Any, exp_id: str, lo: int, hi: int) -> list[str]:
    from mlflow.entities import Metric, Param, RunTag

    ids = []
    for i in range(lo, hi):
        name, params, metrics, tags, start = run_data(i)
        run = client.create_run(
            exp_id, start_time=start, tags={"mlflow.runName": name}, run_name=name
        )
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, start + 1000, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items() if k != "mlflow.runName"],
        )
        client.set_terminated(run.info.run_id, end_time=start + 30_000)
        ids.append(run.info.run_id)
    return ids


def fill_mlflow_sqlite(db_path: Path, template: str, lo: int, hi: int) -> None:
    """Runs lo..hi-1 as rows shaped exactly like the client-made run `template`."""
    db = sqlite3.connect(db_path)
    tables = ("runs", "params", "tags", "metrics", "latest_metrics")
    cols = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    tmpl = {
        t: [
            dict(zip(cols[t], r, strict=True))
            for r in db.execute(f"SELECT * FROM {t} WHERE run_uuid = ?", (template,))
        ]
        for t in tables
    }
    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in tables}
    for i in range(lo, hi):
        name, params, metrics, tags, start = run_data(i)
        rid = run_id_of(i, "mlflow")
        r = dict(tmpl["runs"][0])
        r.update(
            run_uuid=rid,
            name=name,
            start_time=start,
            end_time=start + 30_000,
            artifact_uri=str(r["artifact_uri"]).replace(template, rid),
        )
        rows["runs"].append(tuple(r[c] for c in cols["runs"]))
        for t, values in (
            ("params", params),
            ("tags", tags),
            ("metrics", metrics),
            ("latest_metrics", metrics),
        ):
            for row in tmpl[t]:
                new = dict(row, run_uuid=rid, value=values.get(row["key"], row["value"]))
                rows[t].append(tuple(new[c] for c in cols[t]))
    with db:
        for t in tables:
            marks = ",".join("?" * len(cols[t]))
            names = ",".join(f'"{c}"' for c in cols[t])
            db.executemany(f"INSERT INTO {t} ({names}) VALUES ({marks})", rows[t])
    db.close()


def fill_mlflow_files(exp_dir: Path, template: str, lo: int, hi: int) -> None:
    """Runs lo..hi-1 as copies of the client-made run directory `template`, with their values."""
    src = exp_dir / template
    meta = (src / "meta.yaml").read_text()
    for i in range(lo, hi):
        name, params, metrics, tags, start = run_data(i)
        rid = run_id_of(i, "mlflow")
        dst = exp_dir / rid
        (dst / "artifacts").mkdir(parents=True)
        for sub, values in (("params", params), ("tags", tags)):
            for k, v in values.items():
                f = dst / sub / k
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text(v)
        (dst / "metrics").mkdir()
        for k, v in metrics.items():
            (dst / "metrics" / k).write_text(f"{start + 1000} {v} 0\n")
        (dst / "meta.yaml").write_text(
            meta.replace(template, rid)
            .replace(f"run_name: {run_data(0)[0]}", f"run_name: {name}")
            .replace(f"start_time: {T0}", f"start_time: {start}")
            .replace(f"end_time: {T0 + 30_000}", f"end_time: {start + 30_000}")
        )


class MLflowStore:
    """One of MLflow's local stores, in its own folder, filled with runs 0..n-1."""

    def __init__(self, mlflow: Any, kind: str, base: Path) -> None:
        self.mlflow, self.kind, self.base = mlflow, kind, base
        base.mkdir(parents=True)
        self.uri = (
            f"sqlite:///{base / 'mlflow.db'}" if kind == "sqlite" else (base / "mlruns").as_uri()
        )
        self.use()
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(self.uri)
        self.exp_id = self.client.create_experiment(
            EXPERIMENT, artifact_location=(base / "artifacts").as_uri()
        )
        self.mlflow.set_experiment(EXPERIMENT)
        self.n = 0
        self.client_per_run_s: float | None = None

    def use(self) -> None:
        self.mlflow.set_tracking_uri(self.uri)

    def fill(self, n: int, via_client: int) -> None:
        self.use()
        k = max(1, min(n, via_client))
        t0 = time.perf_counter()
        ids = mlflow_client_runs(self.client, self.exp_id, 0, k)
        self.client_per_run_s = (time.perf_counter() - t0) / k
        if n > k:
            if self.kind == "sqlite":
                fill_mlflow_sqlite(self.base / "mlflow.db", ids[0], k, n)
            else:
                fill_mlflow_files(self.base / "mlruns" / self.exp_id, ids[0], k, n)
        self.n = n

    def search(self) -> Any:
        return self.client.search_runs([self.exp_id], FILTER, order_by=ORDER_BY, max_results=1000)


# -- the bench -------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    ap.add_argument("--runs", type=int, help="runs on the branch for start/end and search (10000)")
    ap.add_argument("--scale", action="store_true", help="also the 100,000-run scale test")
    ap.add_argument("--scale-runs", type=int, default=100_000, help="runs for --scale (100000)")
    ap.add_argument("--batch", type=int, default=1000, help="synthetic runs per commit (1000)")
    ap.add_argument(
        "--metric-calls", type=int, help="log_metric calls in the flatness run (100000)"
    )
    ap.add_argument("--file-runs", type=int, help="runs in MLflow's file store (2000)")
    ap.add_argument(
        "--sqlite-runs", type=int, help="runs in MLflow's sqlite store (same as --runs)"
    )
    ap.add_argument(
        "--client-runs",
        type=int,
        default=100,
        help="runs made through MLflow's client before copying (100)",
    )
    ap.add_argument("--reps", type=int, help="repetitions of start/end and gitml search (20)")
    ap.add_argument(
        "--repack-window",
        type=int,
        default=10,
        help="git repack --window (10; gc --aggressive: 250)",
    )
    ap.add_argument("--no-mlflow", action="store_true", help="skip the MLflow peers")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = ap.parse_args()
    global REPACK_WINDOW
    REPACK_WINDOW = a.repack_window
    q = a.quick
    runs = a.runs or (1000 if q else 10_000)
    metric_calls = a.metric_calls or (10_000 if q else 100_000)
    file_runs = a.file_runs or (200 if q else 2000)
    sqlite_runs = a.sqlite_runs or runs
    reps = a.reps or (7 if q else 20)
    peer_reps = 3 if q else 5

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    for k, v in GIT_ENV.items():
        os.environ.setdefault(k, v)
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)

    tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-"))
    os.chdir(tmp)  # MLflow writes ./mlruns and friends relative to the working directory
    summary = Summary()
    try:
        return run_all(a, tmp, summary, runs, metric_calls, file_runs, sqlite_runs, reps, peer_reps)
    finally:
        os.chdir(ROOT)
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run_all(
    a: Any,
    tmp: Path,
    summary: Summary,
    runs: int,
    metric_calls: int,
    file_runs: int,
    sqlite_runs: int,
    reps: int,
    peer_reps: int,
) -> int:
    import gitml
    from gitml.tracking.tracker import get_tracker, reset_all

    mlflow = None if a.no_mlflow else optional_import("mlflow")
    print(
        f"python {sys.version.split()[0]}, gitml {gitml.__version__}, "
        f"mlflow {getattr(mlflow, '__version__', 'absent')}, git {git(['--version'], tmp).stdout.split()[-1]}, "
        f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"
    )
    head = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    print(f"gitml source: {head.stdout.strip() or 'unknown'}")
    print(
        f"runs={runs} sqlite_runs={sqlite_runs} file_runs={file_runs} metric_calls={metric_calls} reps={reps}"
    )

    # 1. log_metric ---------------------------------------------------------------------------
    section("1. log_metric in a training loop (fluent API, one active run)")
    batches, size = (5, 1000) if a.quick else (9, 5000)
    gitml.set_tracking_uri(str(git_init(tmp / "g-metric")))
    gitml.set_experiment(EXPERIMENT)
    with gitml.start_run():
        time_batches(lambda i: gitml.log_metric("loss", 1.0 / (i + 1), step=i), 1, size)  # warm-up
        g_call = median(
            time_batches(lambda i: gitml.log_metric("loss", 1.0 / (i + 1), step=i), batches, size)
        )
    print(f"gitml          {fmt_s(g_call)} per call (median of {batches} batches of {size})")
    peers: dict[str, float] = {}
    if mlflow is not None:
        for kind, (nb, bs) in (("file", (5, 200)), ("sqlite", (5, 30))):
            if a.quick:
                nb, bs = 3, bs // 2
            store = MLflowStore(mlflow, kind, tmp / f"m-metric-{kind}")
            with mlflow.start_run():
                time_batches(lambda i: mlflow.log_metric("loss", 1.0 / (i + 1), step=i), 1, 5)
                peers[kind] = median(
                    time_batches(lambda i: mlflow.log_metric("loss", 1.0 / (i + 1), step=i), nb, bs)
                )
            print(
                f"mlflow {kind:7} {fmt_s(peers[kind])} per call (median of {nb} batches of {bs}); "
                f"gitml is {ratio(peers[kind], g_call)} cheaper"
            )
    if "file" in peers:
        summary.add(
            "log_metric vs MLflow file store",
            ">= 50x cheaper",
            f"{fmt_s(g_call)} vs {fmt_s(peers['file'])} = {ratio(peers['file'], g_call)}",
            peers["file"] / g_call >= 50,
        )
    else:
        summary.add(
            "log_metric per call (gitml)", "<= 18 us (0.9 ms / 50)", fmt_s(g_call), g_call <= 18e-6
        )
    if "sqlite" in peers:
        summary.add(
            "log_metric vs MLflow sqlite",
            "-",
            f"{fmt_s(g_call)} vs {fmt_s(peers['sqlite'])} = {ratio(peers['sqlite'], g_call)}",
            None,
        )

    # flatness: one run, `metric_calls` calls, timed per block of 1000
    block = 1000
    nblocks = max(2, metric_calls // block)
    with gitml.start_run():
        blocks = time_batches(
            lambda i: gitml.log_metric("loss", 1.0 / (i + 1), step=i), nblocks, block
        )
        t0 = time.perf_counter()
    end_s = time.perf_counter() - t0
    k = max(1, nblocks // 10)
    first, last = median(blocks[:k]), median(blocks[-k:])
    print(
        f"calls 1-{block}: {fmt_s(blocks[0])}/call; calls {(nblocks - 1) * block + 1:,}-{nblocks * block:,}: "
        f"{fmt_s(blocks[-1])}/call; median of first {k} blocks {fmt_s(first)}, of last {k} {fmt_s(last)}; "
        f"end_run (commit of {nblocks * block:,} points, compaction) {fmt_s(end_s)}"
    )
    summary.add(
        f"log_metric flat over {nblocks * block:,} calls",
        "last/first <= 1.5",
        f"{fmt_s(first)} -> {fmt_s(last)} ({last / first:.2f}x)",
        last / first <= 1.5,
    )
    summary.add(f"end_run after {nblocks * block:,} points", "-", fmt_s(end_s), None)
    reset_all()

    # 2+3. a branch with `runs` runs: start/end, search ----------------------------------------
    section(f"2. gitml: {runs:,} synthetic runs on the branch")
    groot = git_init(tmp / "g-runs")
    info: dict[str, Any] = {}
    exp_id, _ = build_gitml_runs(groot, runs, a.batch, info)
    print(
        f"built in {fmt_s(info['build_s'])} (gitml encode {fmt_s(info['encode_per_run_s'])}/run; "
        f"gitml GitRepo.commit of the first {info['gitml_commit_batch_runs']} runs "
        f"{fmt_s(info['gitml_commit_batch_s'])}; fast-import tree == gitml tree: "
        f"{info.get('fast_import_tree_matches', 'n/a')})"
    )
    size0 = pack_size(groot)
    print(
        f"packed: {fmt_bytes(size0)}, {fmt_bytes(size0 / runs)} per run (synthetic: one commit per {a.batch} runs)"
    )

    client = gitml.MlflowClient()
    t0 = time.perf_counter()
    found = gitml_search(client, exp_id)
    cold = time.perf_counter() - t0
    print(
        f"gitml search, cold (builds the index over {runs:,} runs): {fmt_s(cold)}; {len(found)} runs"
    )
    g_search, found = search_times(lambda: gitml_search(client, exp_id), reps)
    g_names = [r.info.run_name for r in found]
    print(
        f"gitml search, warm: {fmt_s(median(g_search))} median of {reps} ({len(found)} runs; MlflowClient.search_runs)"
    )
    g_fluent, _ = search_times(lambda: gitml_fluent_search(exp_id), reps)
    print(
        f"gitml search, warm, fluent gitml.search_runs(output_format='list'): {fmt_s(median(g_fluent))}"
    )

    tip0 = get_tracker(str(groot)).repo.tip()
    g_se = start_end_times(gitml_start_end, reps)
    print(
        f"gitml start+end (20 params, 10 metrics) with {runs:,} runs: {fmt_s(median(g_se))} median of {reps} "
        f"(min {fmt_s(min(g_se))}, max {fmt_s(max(g_se))})"
    )
    summary.add(
        f"start+end run, {runs:,} runs on branch",
        "< 30 ms",
        fmt_s(median(g_se)),
        median(g_se) < 0.030,
    )
    tip1 = get_tracker(str(groot)).repo.tip()
    real_per_run, attributed = real_run_cost(groot, size0, str(tip0), str(tip1), reps)
    # one more search after new runs: the index catches up by tree diff
    t0 = time.perf_counter()
    gitml_search(client, exp_id)
    print(
        f"gitml search after {reps} new runs (incremental index update): {fmt_s(time.perf_counter() - t0)}"
    )

    section("3. search_runs: filter on a metric and a param, ordered by a metric")
    print(f"filter {FILTER!r}, order_by {ORDER_BY}, max_results 1000")
    ml_search: dict[str, float] = {}
    ml_se: dict[str, float] = {}
    if mlflow is not None:
        for kind, n in (("sqlite", sqlite_runs), ("file", file_runs)):
            store = MLflowStore(mlflow, kind, tmp / f"m-runs-{kind}")
            t0 = time.perf_counter()
            store.fill(n, a.client_runs)
            print(
                f"mlflow {kind}: {n:,} runs in {fmt_s(time.perf_counter() - t0)} "
                f"({min(n, a.client_runs)} via client at {fmt_s(store.client_per_run_s)}/run, rest copied)"
            )
            store.search()  # warm-up
            times, res = search_times(store.search, peer_reps)
            ml_search[kind] = median(times)
            names = [r.info.run_name for r in res]
            same = (
                ""
                if kind != "sqlite" or n != runs
                else (
                    f"; same runs and order as gitml: {names == g_names[: len(names)] and len(names) == len(g_names)}"
                )
            )
            print(
                f"mlflow {kind} search over {n:,} runs: {fmt_s(ml_search[kind])} median of {peer_reps} "
                f"({len(res)} runs){same}"
            )
            store.use()
            se = start_end_times(lambda p, m: mlflow_start_end(mlflow, p, m), peer_reps)
            ml_se[kind] = median(se)
            print(
                f"mlflow {kind} start+end with {n:,} runs: {fmt_s(ml_se[kind])} median of {peer_reps}"
            )
    gs = median(g_search)
    summary.add(f"search warm, {runs:,} runs", "< 50 ms", fmt_s(gs), gs < 0.050)
    summary.add("search warm, fluent gitml.search_runs", "-", fmt_s(median(g_fluent)), None)
    if "sqlite" in ml_search:
        sr = ml_search["sqlite"]
        note = "" if sqlite_runs == runs else f" (sqlite over {sqlite_runs:,})"
        summary.add(
            "search vs MLflow sqlite",
            ">= 10x faster",
            f"{fmt_s(gs)} vs {fmt_s(sr)} = {ratio(sr, gs)}{note}",
            sr / gs >= 10,
        )
    if "file" in ml_search:
        summary.add(
            f"search, MLflow file store, {file_runs:,} runs",
            "reference ~3 s / 2,000",
            fmt_s(ml_search["file"]),
            None,
        )
    for kind, v in ml_se.items():
        summary.add(f"start+end, MLflow {kind}", "reference", fmt_s(v), None)
    summary.add("search cold (index build)", "-", f"{fmt_s(cold)} over {runs:,}", None)
    summary.add(
        "packed size per run, synthetic", "< 5 KB", fmt_bytes(size0 / runs), size0 / runs < 5000
    )
    summary.add(
        f"packed size per real run at {runs:,} (pack growth)",
        "< 5 KB",
        fmt_bytes(real_per_run),
        real_per_run < 5000,
    )
    summary.add(f"packed objects of a real run at {runs:,}", "-", fmt_bytes(attributed), None)
    reset_all()

    # 4. import ---------------------------------------------------------------------------------
    section("4. import time (fresh interpreter, startup included)")
    n_imp = 3 if a.quick else 5
    base = median(import_time("", n_imp))
    g_imp = median(import_time("gitml", n_imp))
    print(f"python -c pass: {fmt_s(base)}; import gitml: {fmt_s(g_imp)} (median of {n_imp})")
    summary.add(
        "import gitml", "< 0.3 s", f"{fmt_s(g_imp)} (bare python {fmt_s(base)})", g_imp < 0.3
    )
    if mlflow is not None:
        m_imp = median(import_time("mlflow", n_imp))
        print(f"import mlflow: {fmt_s(m_imp)} ({ratio(m_imp, g_imp)} gitml)")
        summary.add("import mlflow", "reference ~2.4 s", fmt_s(m_imp), None)

    # 5. scale ----------------------------------------------------------------------------------
    if a.scale:
        n = a.scale_runs
        section(f"5. scale: {n:,} synthetic runs")
        sroot = git_init(tmp / "g-scale")
        info = {}
        exp_id, _ = build_gitml_runs(sroot, n, a.batch, info)
        print(f"built in {fmt_s(info['build_s'])} (encode {fmt_s(info['encode_per_run_s'])}/run)")
        client = gitml.MlflowClient()
        t0 = time.perf_counter()
        gitml_search(client, exp_id)
        cold = time.perf_counter() - t0
        times, found = search_times(lambda: gitml_search(client, exp_id), reps)
        print(
            f"search cold {fmt_s(cold)}; warm {fmt_s(median(times))} median of {reps} ({len(found)} runs)"
        )
        summary.add(
            f"search warm, {n:,} runs", "< 200 ms", fmt_s(median(times)), median(times) < 0.200
        )
        summary.add(f"search cold (index build), {n:,} runs", "-", fmt_s(cold), None)
        t0 = time.perf_counter()
        s0 = pack_size(sroot)
        print(
            f"git repack -adf --window={REPACK_WINDOW}: {fmt_s(time.perf_counter() - t0)}; pack {fmt_bytes(s0)}, {fmt_bytes(s0 / n)} per run"
        )
        summary.add(f"packed size per run, {n:,} runs", "< 5 KB", fmt_bytes(s0 / n), s0 / n < 5000)
        tip0 = get_tracker(str(sroot)).repo.tip()
        se = start_end_times(gitml_start_end, reps)
        tip1 = get_tracker(str(sroot)).repo.tip()
        print(f"start+end with {n:,} runs: {fmt_s(median(se))} median of {reps}")
        real, attributed = real_run_cost(sroot, s0, str(tip0), str(tip1), reps)
        summary.add(
            f"start+end run, {n:,} runs on branch", "< 30 ms", fmt_s(median(se)), median(se) < 0.030
        )
        summary.add(
            f"packed size per real run at {n:,} (pack growth)",
            "< 5 KB",
            fmt_bytes(real),
            real < 5000,
        )
        summary.add(f"packed objects of a real run at {n:,}", "-", fmt_bytes(attributed), None)
        reset_all()

    summary.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

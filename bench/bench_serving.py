"""`gitml models serve` vs `mlflow models serve`: requests/s, p50/p99, memory, time to /ping.

Same models (a scikit-learn logistic regression and the seed's CNN), saved once in each
format from the same fitted object; same wrk load on loopback, one row and 32 rows per
request; one worker each; measured in the same run. Needs wrk, mlflow and torch in the
running environment (`make bench` builds .venv-bench). Environment: BENCH_SECONDS (default
5), BENCH_CONNECTIONS (default 4), BENCH_ROUNDS (default 3: each server is started and
loaded that many times, gitml, MLflow and the do-nothing app taking turns, and every figure
is the median), BENCH_MODELS (default "sklearn,cnn": which models to measure). The do-nothing ASGI app (`noop_asgi.py`, on the same uvicorn, uvloop and
httptools, sent the same body) is the ceiling. The last lines give, per model at one row,
the three ratios of the targets (gitml/MLflow, V2 `/infer` over `/invocations`, and
`/invocations` over the do-nothing app), and the load average, since other work on the
machine skews every figure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "image-classifier"
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
MODELS = tuple(os.environ.get("BENCH_MODELS", "sklearn,cnn").split(","))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ping(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/ping", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            todo.extend(int(c) for c in children)
        except OSError:
            continue
    return total / 1024


def build_models(where: Path) -> dict[str, dict[str, Path]]:
    """{"sklearn": {"gitml": path, "mlflow": path}, "cnn": {...}}."""
    import mlflow.pytorch
    import mlflow.sklearn
    import numpy as np
    import torch
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import gitml.pytorch
    import gitml.sklearn
    from gitml.models import infer_signature

    sys.path.insert(0, str(EXAMPLE))
    from model import Net

    X, y = load_iris(return_X_y=True, as_frame=True)
    lr = LogisticRegression(max_iter=500).fit(X, y)
    sig = infer_signature(X, lr.predict(X))
    out: dict[str, dict[str, Path]] = {"sklearn": {}, "cnn": {}}
    out["sklearn"]["gitml"] = where / "sk-gitml"
    gitml.sklearn.save_model(lr, str(out["sklearn"]["gitml"]), signature=sig)
    out["sklearn"]["mlflow"] = where / "sk-mlflow"
    mlflow.sklearn.save_model(
        lr, str(out["sklearn"]["mlflow"]), signature=mlflow.models.infer_signature(X, lr.predict(X))
    )
    torch.manual_seed(0)
    net = Net().eval()
    example = np.zeros((2, 3, 32, 32), dtype=np.float32)
    with torch.inference_mode():
        logits = net(torch.from_numpy(example)).numpy()
    out["cnn"]["gitml"] = where / "cnn-gitml"
    gitml.pytorch.save_model(
        net, str(out["cnn"]["gitml"]), code_paths=[str(EXAMPLE / "model.py")],
        signature=infer_signature(example, logits),
    )  # fmt: skip
    out["cnn"]["mlflow"] = where / "cnn-mlflow"
    mlflow.pytorch.save_model(
        net, str(out["cnn"]["mlflow"]), code_paths=[str(EXAMPLE / "model.py")],
        signature=mlflow.models.infer_signature(example, logits), input_example=example,
    )  # fmt: skip
    return out


def v2_payloads() -> dict[str, dict[int, str]]:
    """Open Inference Protocol (V2) bodies per model, for 1 and 32 rows: the same data."""
    import numpy as np
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(0)
    out: dict[str, dict[int, str]] = {"sklearn": {}, "cnn": {}}
    for rows in (1, 32):
        head = X.head(rows)
        out["sklearn"][rows] = json.dumps({"inputs": [
            {"name": c, "shape": [rows], "datatype": "FP64", "data": head[c].tolist()} for c in X.columns
        ]})  # fmt: skip
        images = rng.random((rows, 3, 32, 32), dtype=np.float32).round(3)
        out["cnn"][rows] = json.dumps({"inputs": [
            {"name": "input-0", "shape": [rows, 3, 32, 32], "datatype": "FP32", "data": images.ravel().tolist()}
        ]})  # fmt: skip
    return out


def payloads() -> dict[str, dict[int, str]]:
    """JSON bodies per model, for 1 and 32 rows."""
    import numpy as np
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(0)
    out: dict[str, dict[int, str]] = {"sklearn": {}, "cnn": {}}
    for rows in (1, 32):
        out["sklearn"][rows] = json.dumps(
            {"dataframe_split": X.head(rows).to_dict(orient="split") | {"index": None}}
        )
        images = rng.random((rows, 3, 32, 32), dtype=np.float32).round(3)
        out["cnn"][rows] = json.dumps({"inputs": images.tolist()})
    return out


V2_PATH = "/v2/models/bench/infer"


def command(kind: str, model: Path | None, port: int) -> list[str]:
    if kind == "noop":
        return [sys.executable, str(Path(__file__).with_name("noop_asgi.py")), str(port)]
    if kind == "gitml":
        return [sys.executable, "-m", "gitml.cli", "models", "serve", "-m", str(model),
                "--port", str(port), "--workers", "1", "--name", "bench"]  # fmt: skip
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model), "-p", str(port),
            "--env-manager", "local", "-w", "1"]  # fmt: skip


def wrk(url: str, body: str, tmp: Path, path: str = "/invocations") -> dict[str, float]:
    """requests/s, p50 and p99 in ms, and non-2xx count of one wrk run."""
    body_file = tmp / "body.json"
    body_file.write_text(body)
    lua = tmp / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body_file}", "r")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    proc = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "--timeout", "10s",
         "-s", str(lua), url + path],
        capture_output=True, text=True, timeout=SECONDS + 60,
    )  # fmt: skip
    text = proc.stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if m is None:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": ms("50"),
        "p99": ms("99"),
        "errors": float(bad.group(1)) if bad else 0.0,
    }


def measure(
    kind: str, model: Path | None, bodies: dict[int, str], tmp: Path, v2: dict[int, str] | None = None
) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = subprocess.Popen(
        command(kind, model, port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT),
             # mlflow starts `uvicorn` by name: this environment's bin/ must come first
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        start_new_session=True,
    )  # fmt: skip
    first = ready = float("nan")
    try:
        while time.perf_counter() - started < 180:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited: {proc.stderr.read().decode()[-800:]}")  # type: ignore[union-attr]
            status = ping(url)
            if status and first != first:
                first = time.perf_counter() - started
            if status == 200:
                ready = time.perf_counter() - started
                break
            time.sleep(0.02)
        else:
            raise RuntimeError(f"{kind} was not ready within 180 s")
        result: dict[str, Any] = {"first_answer_s": first, "ready_s": ready}
        for rows, body in bodies.items():
            req = urllib.request.Request(url + "/invocations", data=body.encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
            with urllib.request.urlopen(req, timeout=30) as r:  # warm-up, and a check
                assert r.status == 200
            result[rows] = wrk(url, body, tmp)
            if v2 is not None:
                result[f"v2-{rows}"] = wrk(url, v2[rows], tmp, V2_PATH)
        result["rss_mib"] = rss_mib(proc.pid)
        return result
    finally:
        _kill(proc)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every figure over rounds (non-2xx answers are summed)."""
    out: dict[str, Any] = {
        k: statistics.median(r[k] for r in runs) for k in ("first_answer_s", "ready_s", "rss_mib")
    }
    for rows in (1, 32):
        out[rows] = {
            k: statistics.median(r[rows][k] for r in runs) for k in ("rps", "p50", "p99")
        }
        out[rows]["errors"] = sum(r[rows]["errors"] for r in runs)
    return out


def each(runs: list[dict[str, Any]], rows: int) -> str:
    """Every round's requests/s, to show the spread behind a median."""
    return " ".join(str(round(r[rows]["rps"])) for r in runs)


def model_call_alone(name: str, model: Path) -> float:
    """Microseconds of one one-row model call in-process, as the server makes it (median of
    rounds): what no server work can remove."""
    import numpy as np
    from sklearn.datasets import load_iris

    from gitml.models.predictor import load_model

    pyfunc = load_model(str(model))
    if name == "sklearn":
        X, _ = load_iris(return_X_y=True, as_frame=True)
        values, columns = X.head(1).to_numpy(), tuple(X.columns)

        def call() -> Any:
            return pyfunc.predict_matrix(values, columns)
    else:
        import torch

        torch.set_num_threads(1)  # one core's cost; this process's OpenMP threads would spin
        image = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)

        def call() -> Any:
            return pyfunc.predict(image)

    for _ in range(50):
        call()
    rounds = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(200):
            call()
        rounds.append((time.perf_counter() - started) / 200 * 1e6)
    return statistics.median(rounds)


def _load() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine skews every figure)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and every process it started (its own session)."""
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk")
        return 1
    try:
        import mlflow  # noqa: F401
    except ImportError:
        print("mlflow is not installed here: run with .venv-bench (make bench)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="gitml-bench-serving-"))
    try:
        models = build_models(tmp)
        bodies = payloads()
        v2_bodies = v2_payloads()
        print(f"wrk -t1 -c{CONNECTIONS} -d{SECONDS}s on loopback, one worker per server, "
              f"median of {ROUNDS} rounds; load average at the start {_load()}")  # fmt: skip
        rows_out = []
        ratios: list[float] = []
        summary = []
        for name in MODELS:
            runs: dict[str, list[dict[str, Any]]] = {"mlflow": [], "gitml": [], "noop": []}
            for i in range(ROUNDS):  # taking turns, so a noisy minute hits all three
                order = ("mlflow", "gitml", "noop") if i % 2 == 0 else ("noop", "gitml", "mlflow")
                for k in order:
                    v2 = v2_bodies[name] if k == "gitml" else None
                    bodies_k = bodies[name] if k != "noop" else {1: bodies[name][1]}
                    runs[k].append(measure(k, models[name].get(k), bodies_k, tmp, v2))
            ceiling = statistics.median(r[1]["rps"] for r in runs["noop"])
            g, m = median_of(runs["gitml"]), median_of(runs["mlflow"])
            for rows in (1, 32):
                ratios.append(g[rows]["rps"] / max(m[rows]["rps"], 1e-9))
                rows_out.append(
                    f"{name:8} {rows:>3} rows | "
                    f"req/s gitml {g[rows]['rps']:8.0f}  mlflow {m[rows]['rps']:7.0f}  "
                    f"x{g[rows]['rps'] / max(m[rows]['rps'], 1e-9):5.1f} | "
                    f"p50 {g[rows]['p50']:6.2f} vs {m[rows]['p50']:6.2f} ms | "
                    f"p99 {g[rows]['p99']:6.2f} vs {m[rows]['p99']:6.2f} ms | "
                    f"non-2xx {g[rows]['errors']:.0f}/{m[rows]['errors']:.0f} | "
                    f"rounds gitml {each(runs['gitml'], rows)}, mlflow {each(runs['mlflow'], rows)}"
                )
            for rows in (1, 32):
                v2_rps = statistics.median(r[f"v2-{rows}"]["rps"] for r in runs["gitml"])
                rows_out.append(
                    f"{name:8} {rows:>3} rows | V2 /infer {v2_rps:8.0f} req/s = "
                    f"{v2_rps / max(g[rows]['rps'], 1e-9):.2f}x /invocations"
                    + (f" | /invocations = {g[rows]['rps'] / max(ceiling, 1e-9):.2f}x the do-nothing app" if rows == 1 else "")
                )
            rows_out.append(
                f"{name:8} start    | first answer {g['first_answer_s']:.2f} s vs "
                f"{m['first_answer_s']:.2f} s; ready {g['ready_s']:.2f} s vs {m['ready_s']:.2f} s | "
                f"RSS {g['rss_mib']:.0f} MiB vs {m['rss_mib']:.0f} MiB "
                f"(x{g['rss_mib'] / max(m['rss_mib'], 1e-9):.2f})"
            )
            rows_out.append(
                f"{name:8} ceiling  | do-nothing ASGI app, same stack and body: {ceiling:.0f} req/s "
                f"(rounds {each(runs['noop'], 1)})"
            )
            alone = model_call_alone(name, models[name]["gitml"])
            budget = (1 / (0.7 * ceiling) - 1 / ceiling) * 1e6
            rows_out.append(
                f"{name:8} model    | one-row model call alone {alone:.0f} us; at 0.7x the do-nothing "
                f"app, all of gitml's work per request must fit in {budget:.0f} us"
            )
            v2_one = statistics.median(r["v2-1"]["rps"] for r in runs["gitml"])
            summary.append(
                f"{name:8} 1 row: gitml/MLflow x{g[1]['rps'] / max(m[1]['rps'], 1e-9):.1f} (target 10) | "
                f"V2/invocations {v2_one / max(g[1]['rps'], 1e-9):.2f} (target >= 0.9) | "
                f"invocations/do-nothing {g[1]['rps'] / max(ceiling, 1e-9):.2f} (target 0.7)"
            )
            print("\n".join(rows_out[-7:]), flush=True)
        print(f"median req/s ratio gitml/mlflow: x{statistics.median(ratios):.1f}")
        print("\n".join(summary))
        print(f"load average at the end {_load()}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The seed's lifecycle end to end, in a throwaway repository: `make demo`.

train -> track -> log the model -> register -> promote to Production -> serve -> predict ->
watch with Prometheus metrics. Each step says what happened; a step whose piece is missing is
skipped with the reason instead of failing the whole demo.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODEL = "digits-cnn"


def say(title: str) -> None:
    print(f"\n== {title}", flush=True)


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    e.setdefault("GIT_AUTHOR_NAME", "gitml demo")
    e.setdefault("GIT_AUTHOR_EMAIL", "demo@example.com")
    e.setdefault("GIT_COMMITTER_NAME", "gitml demo")
    e.setdefault("GIT_COMMITTER_EMAIL", "demo@example.com")
    return e


def gitml_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gitml.cli", *args]


def run(cmd: list[str], cwd: Path, show: str | None = None, timeout: float = 900) -> bool:
    """Run and stream a command; True when it succeeded."""
    if show:
        print(f"$ {show}", flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env(), timeout=timeout)
    return proc.returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, body: Any = None, timeout: float = 10) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, str(e)


def wait_ready(url: str, proc: subprocess.Popen[Any], deadline_s: float) -> tuple[float, float]:
    """(seconds to the first answer, seconds to ready)."""
    started = time.perf_counter()
    first = -1.0
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        status, _ = http(url + "/ping", timeout=2)
        if status and first < 0:
            first = time.perf_counter() - started
        if status == 200:
            return first, time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError(f"no 200 from /ping within {deadline_s} s")


def stop(proc: subprocess.Popen[Any] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def make_repo(where: Path) -> Path:
    repo = where / "image-classifier"
    repo.mkdir()
    for name in ("model.py", "data.py", "train.py"):
        shutil.copy2(HERE / name, repo / name)
    (repo / ".gitignore").write_text("__pycache__/\n")
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "."],
                ["git", "commit", "-q", "-m", "image classifier: the seed's CNN on digits"]):  # fmt: skip
        subprocess.run(cmd, cwd=repo, env=env(), check=True)
    return repo


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every step ran, 1 when one failed (the rest still ran)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the demo repository afterwards")
    args = p.parse_args(argv)
    failed: list[str] = []
    where = Path(tempfile.mkdtemp(prefix="gitml-demo-"))
    repo = make_repo(where)
    server: subprocess.Popen[Any] | None = None
    monitor: subprocess.Popen[Any] | None = None
    t0 = time.perf_counter()
    try:
        say(f"1. A Git repository with the training code: {repo}")
        print("   (gitml keeps runs on the branch 'gitml' and the registry in Git tags; no server)")

        say(f"2. Train the CNN for {args.epochs} epochs, tracked by gitml, registered, promoted")
        ok = run([sys.executable, "train.py", "--epochs", str(args.epochs), "--threshold", "0.9"],
                 repo, show=f"python train.py --epochs {args.epochs} --threshold 0.9")  # fmt: skip
        if not ok:
            failed.append("train")
            print("   SKIPPED the rest: training failed (see above)")
            return 1

        say("3. What gitml recorded")
        for shown in (["experiments", "list"], ["runs", "list"], ["models", "list"]):
            if not run(gitml_cmd(*shown), repo, show="gitml " + " ".join(shown), timeout=120):
                print(f"   SKIPPED: `gitml {' '.join(shown)}` is not available in this build")
        subprocess.run(["git", "tag", "-l", f"{MODEL}*", "-n1"], cwd=repo, env=env())
        subprocess.run(["git", "log", "--oneline", "-3", "gitml"], cwd=repo, env=env())

        say(f"4. Serve models:/{MODEL}/Production")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = gitml_cmd("models", "serve", "-m", f"models:/{MODEL}/Production", "--port", str(port))
        print(f"$ gitml models serve -m models:/{MODEL}/Production --port {port}", flush=True)
        server = subprocess.Popen(cmd, cwd=repo, env=env())
        try:
            first, ready = wait_ready(url, server, 120)
            print(
                f"   first answer after {first:.2f} s; model loaded, /ping 200 after {ready:.2f} s"
            )
        except RuntimeError as e:
            failed.append("serve")
            print(f"   SKIPPED serving: {e}")
            server = None

        if server is not None:
            say("5. Send predictions")
            sys.path.insert(0, str(HERE))
            from data import load_digits_3x32

            _, _, x_test, y_test = load_digits_3x32(0)
            status, text = http(url + "/invocations", {"inputs": x_test[:16].tolist()})
            if status == 200:
                logits = json.loads(text)["predictions"]
                predicted = [max(range(10), key=row.__getitem__) for row in logits]
                right = sum(
                    int(a == b) for a, b in zip(predicted, y_test[:16].tolist(), strict=True)
                )
                print(
                    f"   predicted {predicted}\n   true      {y_test[:16].tolist()}  ({right}/16 right)"
                )
            else:
                failed.append("predict")
                print(f"   prediction failed: HTTP {status}: {text[:300]}")
            status, text = http(url + "/invocations", {"inputs": [[1, 2, 3]]})
            print(f"   a wrong shape answers {status}: {text}")
            print("   /health:", http(url + "/health")[1])
            metrics = http(url + "/metrics")[1].splitlines()
            keep = ("gitml_requests_total", "gitml_predictions_total", "gitml_model_info")
            print("   /metrics (excerpt):")
            for line in metrics:
                if line.startswith(keep):
                    print("     " + line)

        say("6. The registry as Prometheus gauges: gitml monitor")
        mport = free_port()
        monitor = subprocess.Popen(gitml_cmd("monitor", "--port", str(mport), "--interval", "5"),
                                   cwd=repo, env=env())  # fmt: skip
        murl = f"http://127.0.0.1:{mport}"
        try:
            wait_ready(murl, monitor, 60)
            for line in http(murl + "/metrics")[1].splitlines():
                if line.startswith("gitml_model_metric") and 'stage="production"' in line:
                    print("     " + line)
        except RuntimeError as e:
            failed.append("monitor")
            print(f"   SKIPPED: {e}")
    finally:
        stop(server)
        stop(monitor)
        say(f"Done in {time.perf_counter() - t0:.0f} s" + (f"; failed: {failed}" if failed else ""))
        print(f"""
Next, in {repo if args.keep else "your own repository"}:
  gitml runs list                                   # the runs, with their metrics
  gitml models list                                 # the registry, from Git tags
  gitml models serve -m models:/{MODEL}/Production --port 5000 --follow
  curl -s localhost:5000/invocations -H 'Content-Type: application/json' \\
       -d '{{"inputs": [[[[0.0, ...]]]]}}'               # 3x32x32 images
  gitml monitor --port 9465                         # registry metrics for Prometheus
  gitml push                                        # share runs and registry with your remote
""")
        if not args.keep:
            shutil.rmtree(where, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""A 1 GB artifact is streamed: logged without memory growing with its size, and stored whole."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git

ROOT = Path(__file__).resolve().parents[2]
GB = 1 << 30

_CHILD = """
import hashlib, json, resource, sys
import gitml
from gitml.artifacts import api
from gitml.artifacts.runs import read_pointers, store_for

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

with gitml.start_run() as run:
    gitml.log_text("warm-up", "small.txt")   # imports and the first commit, before measuring
    api.download_artifacts(run._tracker, run.info.run_id, "small.txt", sys.argv[2])
    before = peak_mb()
    gitml.log_artifact(sys.argv[1], "ckpt")
    after_log = peak_mb()
    pointer = read_pointers(run._tracker, run.info.run_id)["ckpt/big.bin"]
    out = store_for(run._tracker).object_path(pointer["md5"])
print(json.dumps({"before": before, "after_log": after_log, "pointer": pointer, "out": out}))
"""


@pytest.mark.slow
def test_one_gigabyte_is_streamed(repo: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    expected = hashlib.md5()
    with open(big, "wb") as f:
        for i in range(GB // len(block)):
            chunk = i.to_bytes(8, "little") + block[8:]  # every MiB differs
            f.write(chunk)
            expected.update(chunk)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(big), str(tmp_path / "dl")],
        cwd=repo, env=env, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["pointer"]["md5"] == expected.hexdigest() and report["pointer"]["size"] == GB
    # Flat: the peak grows by buffers (a few 8 MiB blocks), never by the file's size.
    assert report["after_log"] - report["before"] < 64, report
    out = Path(report["out"])  # the cache object: copied while hashed, so check its bytes
    assert out.stat().st_size == GB
    with open(out, "rb") as f:
        got = hashlib.file_digest(f, "md5").hexdigest()
    assert got == expected.hexdigest()
    assert git("status", "--porcelain", cwd=repo) == ""  # the working tree is untouched

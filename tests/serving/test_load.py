"""Bounded load from wrk on loopback: every request answered 2xx, and the batcher merges them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import fake_server_args, free_port

SCRIPT = """
wrk.method = "POST"
wrk.body = '{"inputs": [[1.0, 2.0, 3.0, 4.0]]}'
wrk.headers["Content-Type"] = "application/json"
"""


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_wrk_load_is_answered_and_batched(tmp_path: Path, start_server: Any) -> None:
    port = free_port()
    server = start_server(fake_server_args(port, "sum"), port)
    server.wait()
    lua = tmp_path / "post.lua"
    lua.write_text(SCRIPT)
    out = subprocess.run(
        ["wrk", "-t1", "-c16", "-d2s", "--timeout", "5s", "-s", str(lua), server.url + "/invocations"],
        capture_output=True, text=True, timeout=30,
    ).stdout  # fmt: skip
    assert "Non-2xx" not in out and "Socket errors" not in out, out
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    assert done > 200, out
    metrics = httpx.get(server.url + "/metrics").text
    ok = re.search(r'gitml_requests_total\{endpoint="/invocations",status="200"\} (\d+)', metrics)
    assert ok is not None and int(ok.group(1)) >= done
    calls = re.search(r"gitml_batch_rows_count (\d+)", metrics)
    assert calls is not None and int(calls.group(1)) < done, "16 connections never shared a call"
    assert httpx.get(server.url + "/ping").status_code == 200

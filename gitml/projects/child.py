"""The child process: started without a shell in its own process group, stopped as a group.

Ctrl-C reaches gitml, not the child (a new session), so gitml decides: SIGTERM to the
whole group, SIGKILL after a grace period, and the run is marked KILLED by the caller.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist

__all__ = ["kill_group", "supervise"]

_KILL_GRACE_S = 5.0


def supervise(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float | None, stdout: Any, stderr: Any
) -> tuple[str, int]:
    """Run the child in its own process group; (status, exit code). No shell is involved."""
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, start_new_session=True, stdout=stdout, stderr=stderr
        )
    except FileNotFoundError as e:
        raise ResourceDoesNotExist(f"cannot start {argv[0]!r}: no such program") from e
    except PermissionError as e:
        raise InvalidParameterValue(f"cannot start {argv[0]!r}: {e}") from e
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            try:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                code = proc.wait(timeout=wait)
                return ("FINISHED" if code == 0 else "FAILED"), code
            except subprocess.TimeoutExpired:
                return "KILLED", kill_group(proc)
    except KeyboardInterrupt:
        kill_group(proc)
        raise


def kill_group(proc: subprocess.Popen[Any]) -> int:
    """SIGTERM the child's process group, then SIGKILL after a grace period."""
    for sig, grace in ((signal.SIGTERM, _KILL_GRACE_S), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()

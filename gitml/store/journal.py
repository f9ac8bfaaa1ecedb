"""Append-only journals under `.git/gitml/journal/`: the crash safety of unflushed writes.

A journal is held open with an exclusive `flock` by the process that writes it; the lock
dies with the process, so a journal whose lock can be taken is an orphan to recover.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Journal", "orphaned_journals", "read_journal"]

# One encoder for every record: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Journal:
    """One writer's journal: JSON arrays, one per line, appended with one write(2) each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Locked under a temporary name, then renamed: a recovering process scanning for
        # orphans must never see a journal before its writer holds the lock.
        tmp = path.with_name(path.name + ".new")
        self._fd: int | None = os.open(tmp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(tmp, path)
        self._pid = os.getpid()

    def append(self, record: list[Any]) -> None:
        """Write one record; it survives the process being killed once this returns."""
        if self._fd is None:
            return
        os.write(self._fd, (_encode(record) + "\n").encode())

    def append_line(self, line: str) -> None:
        """Write one record already encoded as a JSON line (the hot path formats its own)."""
        if self._fd is not None:
            os.write(self._fd, line.encode())

    def close(self, delete: bool = False) -> None:
        """Release the lock; delete the file when everything in it is committed."""
        if self._fd is None or self._pid != os.getpid():
            return
        if delete:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        os.close(self._fd)
        self._fd = None


def read_journal(path: Path) -> list[list[Any]]:
    """The complete records of a journal (a torn last line from a crash is dropped)."""
    records: list[list[Any]] = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                records.append(json.loads(line))
            except ValueError:
                break
    return records


def orphaned_journals(directory: Path) -> Iterator[tuple[Path, int]]:
    """Journals whose writer is gone, each yielded with an fd holding its lock.

    The caller recovers the journal, then deletes it and closes the fd.
    """
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.jsonl")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live writer holds it
            continue
        if not path.exists():  # recovered by another process meanwhile
            os.close(fd)
            continue
        yield path, fd

"""A DVC remote's object database as gitml uses it: named as the user names it, and, for a
folder remote, never deleting what it is asked about."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["never_removing", "remote_label"]


def remote_label(odb: Any) -> str:
    """The remote as a user names it: its URL, without DVC's inner `files/md5`."""
    url = str(odb.fs.unstrip_protocol(odb.path))
    for suffix in ("/files/md5", "\\files\\md5"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def never_removing(odb: Any) -> Any:
    """A folder remote that answers "exists?" by existence alone.

    dvc-data's local object database hashes a writable object when asked whether it exists
    and deletes it when the bytes do not match: a pull would delete tampered objects from
    the shared remote (evidence gone, the damage spread as "missing"). gitml hashes what
    it fetched instead (`ArtifactStore._verify`) and reports corrupt objects by name.
    """
    from dvc_data.hashfile.db.local import LocalHashFileDB

    if not isinstance(odb, LocalHashFileDB) or getattr(odb, "_gitml_remote", False):
        return odb

    class _RemoteFolderDB(type(odb)):  # type: ignore[misc]
        _gitml_remote = True

        def oids_exist(self, oids: Any, jobs: Any = None, progress: Any = None) -> list[str]:
            return [o for o in oids if os.path.isfile(self.oid_to_path(o))]

    odb.__class__ = _RemoteFolderDB
    return odb

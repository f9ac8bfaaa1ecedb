"""The artifact store: the local cache plus DVC remotes: fetch, push, status, gc.

In a repository with `.dvc/`, DVC's remotes are used as `dvc` configures them; without it a
local folder remote lives under `.git/gitml/artifacts/remote`. Transfers are dvc-data's
(`transfer` with `shallow=False`, so folders go with their files). All DVC imports happen
inside methods, so a run that logs no artifact never imports DVC.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gitml.artifacts.cache import _LEDGER, LocalCache, hash_file
from gitml.artifacts.paths import normalize_artifact_path
from gitml.artifacts.pointers import ManifestEntry
from gitml.exceptions import (
    CorruptMetadata,
    GitMLError,
    InvalidParameterValue,
    RemoteError,
    ResourceDoesNotExist,
)

__all__ = ["ArtifactStore", "StatusResult", "TransferSummary", "hash_file"]

_OID = re.compile(r"^[0-9a-f]{32}(\.dir)?$")


@dataclass(frozen=True)
class TransferSummary:
    """What a push or pull moved: object ids transferred and failed, and where."""

    remote: str
    transferred: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed


@dataclass(frozen=True)
class StatusResult:
    """Where the objects of some artifacts are: both sides, only local, only remote, nowhere."""

    remote: str
    synced: frozenset[str] = field(default_factory=frozenset)
    local_only: frozenset[str] = field(default_factory=frozenset)
    remote_only: frozenset[str] = field(default_factory=frozenset)
    missing: frozenset[str] = field(default_factory=frozenset)


def _where(odb: Any) -> str:
    """The remote as a user names it: its URL, without DVC's inner `files/md5`."""
    url = str(odb.fs.unstrip_protocol(odb.path))
    for suffix in ("/files/md5", "\\files\\md5"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


class ArtifactStore(LocalCache):
    """The artifact cache of one repository, and its remotes."""

    def read_manifest(self, oid: str, remote: str | None = None) -> list[ManifestEntry]:
        """The entries of folder object `oid`, fetching the manifest from the remote if missing."""
        if not self.exists(oid):
            self.fetch([oid], remote=remote, deep=False)
        try:
            with open(self.object_path(oid), "rb") as f:
                data = f.read()
        except OSError as e:
            raise CorruptMetadata(f"folder manifest {oid} in the artifact cache is unreadable: {e}") from e
        return self._parse_manifest(oid, data)

    def _parse_manifest(self, oid: str, data: bytes) -> list[ManifestEntry]:
        try:
            raw = json.loads(data)
        except ValueError as e:
            raise CorruptMetadata(f"folder manifest {oid} does not parse: {e}") from e
        if not isinstance(raw, list):
            raise CorruptMetadata(f"folder manifest {oid} is not a list")
        out = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("md5"), str):
                raise CorruptMetadata(f"folder manifest {oid} has a malformed entry: {item!r}")
            # Manifests come from remotes and other clones: their paths are untrusted.
            rel = normalize_artifact_path(item.get("relpath"), allow_root=False)
            size = item.get("size")
            if not isinstance(size, int):
                # DVC's manifests carry no sizes: the local copy knows it, else it is unknown.
                try:
                    size = os.stat(self.object_path(item["md5"])).st_size
                except OSError:
                    size = None
            out.append(ManifestEntry(rel, item["md5"], size))
        return out

    # -- remotes -------------------------------------------------------------------------
    def remote_name(self, remote: str | None = None) -> str:
        """A readable name of the remote that `remote` (or the default) resolves to."""
        odb = self.remote_odb(remote)
        return _where(odb)

    def has_configured_remote(self) -> bool:
        """Whether a remote is configured (DVC's default or gitml's), beyond the embedded one."""
        if self.default_remote:
            return True
        if self.uses_dvc:
            return bool(self._dvc_repo().config["core"].get("remote"))
        return False

    def remote_odb(self, remote: str | None = None) -> Any:
        """The remote object database for `remote` (a DVC remote name, a URL or a folder)."""
        name = remote or self.default_remote
        if name in self._remotes:
            return self._remotes[name]
        odb = self._open_remote(name)
        self._remotes[name] = odb
        return odb

    def _open_remote(self, name: str | None) -> Any:
        if name and ("://" in name or "/" in name or name.startswith(".")):
            return self._url_odb(name)
        if self.uses_dvc:
            from dvc.config import NoRemoteError
            from dvc.exceptions import DvcException

            repo = self._dvc_repo()
            known = sorted(repo.config.get("remote", {}))
            if name and name not in known:
                raise InvalidParameterValue(
                    f"no DVC remote named {name!r} (configured: {', '.join(known) or 'none'}); "
                    "add one with 'dvc remote add', or give a URL or folder"
                )
            if name or repo.config["core"].get("remote"):
                try:
                    return repo.cloud.get_remote_odb(name, "push")
                except NoRemoteError as e:
                    raise InvalidParameterValue(f"no DVC remote named {name!r}: {e}") from e
                except DvcException as e:
                    raise RemoteError(f"cannot open DVC remote {name!r}: {e}") from e
        elif name:
            raise InvalidParameterValue(
                f"no DVC remote named {name!r}: this repository has no .dvc/; "
                "give a URL or folder, or run 'dvc init' and 'dvc remote add'"
            )
        return self._local_odb(self.state_dir / "remote")

    def _url_odb(self, url: str) -> Any:
        if "://" not in url or url.startswith("file://"):
            path = url[len("file://") :] if url.startswith("file://") else url
            if not os.path.isabs(path):
                path = os.path.join(self.root, path)
            return self._local_odb(path)
        try:
            from dvc.fs import get_cloud_fs
            from dvc_data.hashfile.db import get_odb

            cls, conf, fs_path = get_cloud_fs(None, url=url)
            fs = cls(**conf)
            return get_odb(fs, fs.join(fs_path, "files", "md5"), hash_name="md5")
        except ImportError as e:
            from gitml.exceptions import MissingDependency

            raise MissingDependency(f"the DVC plugin for {url.split(':', 1)[0]}", "artifacts") from e
        except Exception as e:  # dvc's config and plugin errors have many types
            raise RemoteError(f"cannot open artifact remote {url!r}: {e}") from e

    @staticmethod
    def _hash_infos(oids: Iterable[str]) -> set[Any]:
        from dvc_data.hashfile.hash_info import HashInfo

        return {HashInfo("md5", o) for o in oids}

    def _expand(self, oids: Iterable[str], remote_odb: Any = None) -> set[str]:
        """Object ids plus the files their folder manifests name (read locally, else from
        `remote_odb` when given, without storing them)."""
        out = set()
        for oid in oids:
            out.add(oid)
            if not oid.endswith(".dir"):
                continue
            if self.exists(oid):
                out.update(e.md5 for e in self.read_manifest(oid))
            elif remote_odb is not None:
                try:
                    data = remote_odb.fs.cat_file(remote_odb.oid_to_path(oid))
                except FileNotFoundError:
                    continue  # lost on both sides: status reports it missing
                out.update(e.md5 for e in self._parse_manifest(oid, data))
        return out

    def push(self, oids: Iterable[str], remote: str | None = None, jobs: int | None = None) -> TransferSummary:
        """Copy objects (folders deeply: manifest and files) from the local cache to the remote.

        A push that dies half-way leaves a marker; the next push to that remote first checks
        the sizes of the objects it would skip and removes truncated ones, since some
        remotes (SFTP among them) write objects in place rather than under a temporary name.
        """
        from dvc_data.hashfile.transfer import transfer

        oids = set(oids)
        dest = self.remote_odb(remote)
        where = _where(dest)
        missing = {o for o in oids if not self.exists(o)}
        marker = self.state_dir / f"pushing-{hashlib.sha256(where.encode()).hexdigest()[:16]}"
        try:
            if marker.exists():
                self._repair_remote(dest, self._expand(oids - missing))
            self.state_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(where + "\n")
            # shallow=False: a folder's files go too, not only its manifest. The embedded
            # remote sits beside the cache: read-only objects are hard-linked, not copied.
            embedded = str(dest.path).startswith(str((self.state_dir / "remote").absolute()))
            result = transfer(
                self.cache, dest, self._hash_infos(oids - missing), jobs=jobs, shallow=False, hardlink=embedded
            )
        except GitMLError:
            raise
        except Exception as e:  # ssh, s3, http... each plugin raises its own types
            raise RemoteError(f"cannot push artifacts to {where}: {e}") from e
        if not result.failed:
            marker.unlink(missing_ok=True)
        return TransferSummary(
            where,
            frozenset(str(h.value) for h in result.transferred),
            frozenset(str(h.value) for h in result.failed) | frozenset(missing),
        )

    def _repair_remote(self, dest: Any, oids: set[str]) -> list[str]:
        """Remove remote objects whose size differs from the local copy (a cut-off upload)."""
        by_prefix: dict[str, list[str]] = {}
        for oid in oids:
            if self.exists(oid):
                by_prefix.setdefault(oid[:2], []).append(oid)
        removed = []
        for prefix, group in sorted(by_prefix.items()):
            folder = dest.fs.join(dest.path, prefix)
            try:
                # One listing per prefix folder (at most 256), not one request per object.
                listing = dest.fs.ls(folder, detail=True)
            except FileNotFoundError:
                continue
            sizes = {dest.fs.name(item["name"]): item.get("size") for item in listing}
            for oid in group:
                remote_size = sizes.get(oid[2:])
                if remote_size is not None and remote_size != os.stat(self.object_path(oid)).st_size:
                    dest.fs.rm_file(dest.oid_to_path(oid))
                    removed.append(oid)
        return removed

    def fetch(
        self,
        oids: Iterable[str],
        remote: str | None = None,
        deep: bool = True,
        jobs: int | None = None,
        strict: bool = True,
    ) -> TransferSummary:
        """Copy objects missing from the local cache from the remote; folders deeply if `deep`.

        With `strict`, raises ResourceDoesNotExist naming the objects the remote lacks;
        otherwise they come back as `failed`.
        """
        from dvc_data.hashfile.transfer import transfer

        wanted = set(oids)
        if deep:
            wanted = self._expand(wanted)
        need = {o for o in wanted if not self.exists(o)}
        if not need:
            return TransferSummary("local cache")
        src = self.remote_odb(remote)
        where = _where(src)
        got: set[str] = set()
        for _ in range(2):  # manifests fetched in the first round name more files
            try:
                result = transfer(src, self.cache, self._hash_infos(need), jobs=jobs, shallow=not deep)
            except GitMLError:
                raise
            except Exception as e:  # ssh, s3, http... each plugin raises its own types
                raise RemoteError(f"cannot fetch artifacts from {where}: {e}") from e
            fetched = {str(h.value) for h in result.transferred}
            self._note(fetched)
            got |= fetched
            if not deep:
                break
            need = {o for o in self._expand(wanted) if not self.exists(o)}
            if not need:
                break
        try:
            # A folder whose files are not all there is not fetched (DVC's rule: the manifest
            # comes last); read it from the remote to name the exact files that are lost.
            lacking = sorted(o for o in (self._expand(wanted, src) if deep else wanted) if not self.exists(o))
        except GitMLError:
            raise
        except Exception as e:
            raise RemoteError(f"cannot read artifact remote {where}: {e}") from e
        if lacking and strict:
            shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
            raise ResourceDoesNotExist(
                f"{len(lacking)} object(s) missing from the local cache and from the remote {where}: {shown}"
            )
        return TransferSummary(where, frozenset(got), frozenset(lacking))

    def status(self, oids: Iterable[str], remote: str | None = None) -> StatusResult:
        """Compare the local cache with the remote for these objects (folders deeply)."""
        from dvc_data.hashfile.status import compare_status

        dest = self.remote_odb(remote)
        where = _where(dest)
        try:
            infos = self._hash_infos(self._expand(oids, dest))
            # Folders are expanded above (from either side), so each object counts once.
            res = compare_status(self.cache, dest, infos, check_deleted=True, shallow=True)
        except GitMLError:
            raise
        except Exception as e:
            raise RemoteError(f"cannot read artifact remote {where}: {e}") from e

        def ids(hs: Iterable[Any]) -> frozenset[str]:
            return frozenset(str(h.value) for h in hs)

        return StatusResult(where, ids(res.ok), ids(res.new), ids(res.deleted), ids(res.missing))

    # -- garbage collection --------------------------------------------------------------
    def gitml_objects(self) -> set[str]:
        """Objects in the local cache that gitml put there (all of them in the embedded cache)."""
        if not self.uses_dvc:
            # Only names of objects: a killed writer may leave `.<random>.tmp` files behind.
            return {o for o in self.cache.all() if _OID.match(o)}
        try:
            with open(self.state_dir / _LEDGER) as f:
                noted = {line.strip() for line in f if line.strip()}
        except FileNotFoundError:
            return set()
        return {o for o in noted if self.exists(o)}

    def gc(self, keep: Iterable[str], dry_run: bool = False, min_age_s: float = 0.0) -> list[str]:
        """Remove gitml's objects that `keep` (folders deeply) does not name; returns them.

        Objects used in the last `min_age_s` seconds are kept: a run logging right now
        writes its objects before its pointers.
        """
        kept = self._expand(keep)
        horizon = time.time() - min_age_s
        doomed = []
        for oid in sorted(self.gitml_objects() - kept):
            try:
                if min_age_s <= 0 or os.stat(self.object_path(oid)).st_mtime < horizon:
                    doomed.append(oid)
            except FileNotFoundError:
                pass
        if not dry_run:
            for oid in doomed:
                try:
                    os.unlink(self.object_path(oid))
                except FileNotFoundError:
                    pass
            if self.uses_dvc and doomed:
                self._rewrite_ledger(set(doomed))
        return doomed

    def _rewrite_ledger(self, removed: set[str]) -> None:
        ledger = self.state_dir / _LEDGER
        try:
            lines = {line.strip() for line in ledger.read_text().splitlines() if line.strip()}
        except FileNotFoundError:
            return
        tmp = ledger.with_suffix(".tmp")
        tmp.write_text("".join(f"{o}\n" for o in sorted(lines - removed)))
        os.replace(tmp, ledger)

    def close(self) -> None:
        """Release DVC's repository object, if one was opened."""
        if self._dvc is not None:
            self._dvc.close()
            self._dvc = None

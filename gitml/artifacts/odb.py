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
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gitml.artifacts.cache import _LEDGER, LocalCache, hash_file
from gitml.artifacts.oids import check_oid, is_dir_oid, is_oid
from gitml.artifacts.paths import normalize_artifact_path
from gitml.artifacts.pointers import ManifestEntry
from gitml.artifacts.remote_odb import never_removing, remote_label
from gitml.exceptions import (
    CorruptMetadata,
    GitMLError,
    InvalidParameterValue,
    RemoteError,
    ResourceDoesNotExist,
)

__all__ = ["ArtifactStore", "StatusResult", "TransferSummary", "hash_file"]

_MANIFEST_MAX = 256 << 20  # a folder of millions of files fits; a multi-GB "manifest" does not


@dataclass(frozen=True)
class TransferSummary:
    """What a push or pull moved: object ids transferred and failed, and where."""

    remote: str
    transferred: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    corrupt: frozenset[str] = frozenset()  # named by a bad manifest or bytes not matching their md5 (also in failed)
    skipped_runs: frozenset[str] = frozenset()  # runs whose pointers are malformed: nothing of theirs moved

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


class ArtifactStore(LocalCache):
    """The artifact cache of one repository, and its remotes."""

    def read_manifest(self, oid: str, remote: str | None = None) -> list[ManifestEntry]:
        """The entries of folder object `oid`, fetching the manifest from the remote if missing."""
        check_oid(oid, "folder manifest")
        if not self.exists(oid):
            self.fetch([oid], remote=remote, deep=False)
        try:
            with open(self.object_path(oid), "rb") as f:
                data = f.read(_MANIFEST_MAX + 1)
        except OSError as e:
            raise CorruptMetadata(f"folder manifest {oid} in the artifact cache is unreadable: {e}") from e
        return self._parse_manifest(oid, data)

    def _parse_manifest(self, oid: str, data: bytes) -> list[ManifestEntry]:
        """Entries of a manifest's bytes, every field checked: manifests come from remotes and
        other clones, so ids, paths and their shape are untrusted. Refused whole (nothing is
        written from it) when one entry is bad, or when it lists both `x` and `x/y`."""
        if len(data) > _MANIFEST_MAX:
            raise CorruptMetadata(f"folder manifest {oid} is larger than {_MANIFEST_MAX >> 20} MiB")
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise CorruptMetadata(f"folder manifest {oid} does not parse: {e}") from e
        if not isinstance(raw, list):
            raise CorruptMetadata(f"folder manifest {oid} is not a list")
        out = []
        seen: set[str] = set()
        for item in raw:
            if not isinstance(item, dict):
                raise CorruptMetadata(f"folder manifest {oid} has a malformed entry: {str(item)[:80]!r}")
            md5 = check_oid(item.get("md5"), f"folder manifest {oid}", allow_dir=False)
            rel = normalize_artifact_path(item.get("relpath"), allow_root=False)  # InvalidPath
            if rel in seen:
                raise CorruptMetadata(f"folder manifest {oid} lists {rel!r} twice")
            seen.add(rel)
            size = item.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                # DVC's manifests carry no sizes: the local copy knows it, else it is unknown.
                try:
                    size = os.stat(self.object_path(md5)).st_size
                except OSError:
                    size = None
            out.append(ManifestEntry(rel, md5, size))
        for rel in seen:
            head = rel
            while "/" in head:
                head = head.rsplit("/", 1)[0]
                if head in seen:
                    raise CorruptMetadata(f"folder manifest {oid} lists both {head!r} and {rel!r}")
        return out

    # -- remotes -------------------------------------------------------------------------
    def remote_name(self, remote: str | None = None) -> str:
        """A readable name of the remote that `remote` (or the default) resolves to."""
        odb = self.remote_odb(remote)
        return remote_label(odb)

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
                    return never_removing(repo.cloud.get_remote_odb(name, "push"))
                except NoRemoteError as e:
                    raise InvalidParameterValue(f"no DVC remote named {name!r}: {e}") from e
                except DvcException as e:
                    raise RemoteError(f"cannot open DVC remote {name!r}: {e}") from e
        elif name:
            raise InvalidParameterValue(
                f"no DVC remote named {name!r}: this repository has no .dvc/; "
                "give a URL or folder, or run 'dvc init' and 'dvc remote add'"
            )
        return never_removing(self._local_odb(self.state_dir / "remote"))

    def _url_odb(self, url: str) -> Any:
        if "://" not in url or url.startswith("file://"):
            path = url[len("file://") :] if url.startswith("file://") else url
            if not os.path.isabs(path):
                path = os.path.join(self.root, path)
            return never_removing(self._local_odb(path))
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

    def _manifest_bytes(self, oid: str, remote_odb: Any) -> bytes | None:
        """A manifest's bytes from the local cache, else from `remote_odb` (None: on neither).
        Bytes read from the remote must hash to their name: tampered ones are corrupt."""
        if self.exists(oid):
            with open(self.object_path(oid), "rb") as f:
                return f.read(_MANIFEST_MAX + 1)
        if remote_odb is None:
            return None
        try:
            data = bytes(remote_odb.fs.cat_file(remote_odb.oid_to_path(oid)))
        except FileNotFoundError:
            return None
        if hashlib.md5(data, usedforsecurity=False).hexdigest() != oid[:32]:
            raise CorruptMetadata(
                f"folder manifest {oid} on the artifact remote does not match its md5 (tampered or damaged)"
            )
        return data

    def _manifests(
        self, oids: Iterable[str], remote_odb: Any = None, bad: dict[str, str] | None = None
    ) -> dict[str, list[str] | None]:
        """{folder oid: the file oids its manifest names (None when neither side has it)}.

        A manifest that fails its checks raises CorruptMetadata, or with `bad` is recorded
        there ({oid: why}) and left out, so one hostile folder does not stop the others.
        """
        out: dict[str, list[str] | None] = {}
        for oid in oids:
            if not is_dir_oid(oid) or oid in out:
                continue
            try:
                data = self._manifest_bytes(oid, remote_odb)
                out[oid] = None if data is None else [e.md5 for e in self._parse_manifest(oid, data)]
            except (CorruptMetadata, InvalidParameterValue) as e:  # InvalidPath: a bad relpath
                if bad is None:
                    raise
                bad[oid] = e.message
            except OSError as e:
                if bad is None:
                    raise CorruptMetadata(f"folder manifest {oid} is unreadable: {e}") from e
                bad[oid] = f"folder manifest {oid} is unreadable: {e}"
        return out

    def _expand(
        self, oids: Iterable[str], remote_odb: Any = None, bad: dict[str, str] | None = None
    ) -> set[str]:
        """Object ids (each checked) plus the files their folder manifests name (read locally,
        else from `remote_odb` when given, without storing them)."""
        wanted = {check_oid(o, "artifact object") for o in oids}
        manifests = self._manifests(wanted, remote_odb, bad)
        out = wanted - set(bad or ())
        for files in manifests.values():
            out.update(files or ())
        return out

    def _verify(self, oids: Iterable[str]) -> set[str]:
        """Hash fetched objects; those whose bytes do not match their name are removed from
        the local cache (never from the remote) and returned."""
        corrupt = set()
        for oid in oids:
            path = self.object_path(oid)
            try:
                ok = hash_file(path) == oid[:32]
            except FileNotFoundError:
                continue
            if not ok:
                corrupt.add(oid)
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        return corrupt

    def push(self, oids: Iterable[str], remote: str | None = None, jobs: int | None = None) -> TransferSummary:
        """Copy objects (folders deeply: manifest and files) from the local cache to the remote.

        Folders are expanded here, from manifests checked by `_parse_manifest`, and handed to
        DVC's transfer as plain objects (files before their manifest, as DVC orders them), so
        DVC never turns an unchecked manifest entry into a path.

        A push that dies half-way leaves a marker; the next push to that remote first checks
        the sizes of the objects it would skip and removes truncated ones, since some
        remotes (SFTP among them) write objects in place rather than under a temporary name.
        """
        from dvc_data.hashfile.transfer import transfer

        bad: dict[str, str] = {}
        wanted = {check_oid(o, "artifact object") for o in oids}
        manifests = self._manifests(wanted, None, bad)
        missing = {o for o in wanted - set(bad) if not self.exists(o)}
        send = wanted - set(bad) - missing
        for dir_oid, files in manifests.items():
            lost = {f for f in files or () if not self.exists(f)}
            missing |= lost
            if lost and dir_oid in send:
                send.discard(dir_oid)  # a folder whose files are not all here: its manifest stays
                missing.add(dir_oid)
            send |= set(files or ()) - lost
        dest = self.remote_odb(remote)
        where = remote_label(dest)
        marker = self.state_dir / f"pushing-{hashlib.sha256(where.encode()).hexdigest()[:16]}"
        try:
            if marker.exists():
                self._repair_remote(dest, send)
            self.state_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(where + "\n")
            # The embedded remote sits beside the cache: read-only objects are hard-linked.
            embedded = str(dest.path).startswith(str((self.state_dir / "remote").absolute()))
            result = transfer(self.cache, dest, self._hash_infos(send), jobs=jobs, shallow=True, hardlink=embedded)
        except GitMLError:
            raise
        except Exception as e:  # ssh, s3, http... each plugin raises its own types
            raise RemoteError(f"cannot push artifacts to {where}: {e}") from e
        if not result.failed:
            marker.unlink(missing_ok=True)
        return TransferSummary(
            where,
            frozenset(str(h.value) for h in result.transferred),
            frozenset(str(h.value) for h in result.failed) | frozenset(missing) | frozenset(bad),
            frozenset(bad),
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

        Manifests are read and checked before anything is written, and what arrives is
        hashed: bytes that do not match their md5 are reported as corrupt (named), removed
        from the local cache and never from the remote. With `strict`, raises CorruptMetadata
        for corrupt objects and ResourceDoesNotExist naming the objects the remote lacks;
        otherwise both come back as `failed` (corrupt ones also as `corrupt`).
        """
        from dvc_data.hashfile.transfer import transfer

        wanted = {check_oid(o, "artifact object") for o in oids}
        if deep:
            # Everything already here (manifests read locally, checked): no remote is opened.
            local_bad: dict[str, str] = {}
            here = self._expand(wanted, None, local_bad)
            if not local_bad and all(self.exists(o) for o in here):
                return TransferSummary("local cache")
        elif all(self.exists(o) for o in wanted):
            return TransferSummary("local cache")
        src = self.remote_odb(remote)
        where = remote_label(src)
        bad: dict[str, str] = {}
        try:
            if deep:
                wanted = self._expand(wanted, src, bad)
            need = {o for o in wanted if not self.exists(o)}
            if not need and not bad:
                return TransferSummary("local cache")
            # Plain objects only (a folder's files were listed above): a manifest is stored
            # after its files, by DVC's own ordering inside one transfer.
            result = transfer(src, self.cache, self._hash_infos(need), jobs=jobs, shallow=True)
        except GitMLError:
            raise
        except Exception as e:  # ssh, s3, http... each plugin raises its own types
            raise RemoteError(f"cannot fetch artifacts from {where}: {e}") from e
        fetched = {str(h.value) for h in result.transferred}
        corrupt = self._verify(fetched)
        for oid in sorted(corrupt):
            bad[oid] = f"artifact object {oid} on the remote {where} does not match its md5 (tampered or damaged)"
        got = fetched - corrupt
        self._note(got)
        lacking = sorted(o for o in wanted if not self.exists(o) and o not in bad)
        if bad and strict:
            shown = "; ".join(bad[o] for o in sorted(bad)[:3]) + (" ..." if len(bad) > 3 else "")
            raise CorruptMetadata(f"{len(bad)} corrupt artifact object(s): {shown}")
        if lacking and strict:
            shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
            raise ResourceDoesNotExist(
                f"{len(lacking)} object(s) missing from the local cache and from the remote {where}: {shown}"
            )
        return TransferSummary(where, frozenset(got), frozenset(lacking) | frozenset(bad), frozenset(bad))

    def status(self, oids: Iterable[str], remote: str | None = None) -> StatusResult:
        """Compare the local cache with the remote for these objects (folders deeply)."""
        from dvc_data.hashfile.status import compare_status

        dest = self.remote_odb(remote)
        where = remote_label(dest)
        bad: dict[str, str] = {}
        try:
            infos = self._hash_infos(self._expand(oids, dest, bad))
            # Folders are expanded above (from either side), so each object counts once.
            res = compare_status(self.cache, dest, infos, check_deleted=True, shallow=True)
        except GitMLError:
            raise
        except Exception as e:
            raise RemoteError(f"cannot read artifact remote {where}: {e}") from e

        def ids(hs: Iterable[Any]) -> frozenset[str]:
            return frozenset(str(h.value) for h in hs)

        return StatusResult(where, ids(res.ok), ids(res.new), ids(res.deleted), ids(res.missing) | frozenset(bad))

    # -- garbage collection --------------------------------------------------------------
    def gitml_objects(self) -> set[str]:
        """Objects in the local cache that gitml put there (all of them in the embedded cache)."""
        if not self.uses_dvc:
            # Only names of objects: a killed writer may leave `.<random>.tmp` files behind.
            return {o for o in self.cache.all() if is_oid(o)}
        try:
            with open(self.state_dir / _LEDGER) as f:
                noted = {line.strip() for line in f if line.strip()}
        except FileNotFoundError:
            return set()
        return {o for o in noted if is_oid(o) and self.exists(o)}

    def gc(self, keep: Iterable[str], dry_run: bool = False, min_age_s: float = 0.0) -> list[str]:
        """Remove gitml's objects that `keep` (folders deeply) does not name; returns them.

        Objects used in the last `min_age_s` seconds are kept: a run logging right now
        writes its objects before its pointers.
        """
        unreadable: dict[str, str] = {}
        kept = self._expand(keep, bad=unreadable) | set(unreadable)
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

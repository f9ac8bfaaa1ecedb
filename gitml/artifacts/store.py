"""The DVC-format artifact cache of a repository and its remote: add, fetch, push, status, gc.

Bytes live in DVC's own layout (`files/md5/xx/<rest>`, `.dir` manifests for folders). In a
repository with `.dvc/`, DVC's cache and remotes are used as `dvc` configures them; without
it an embedded cache and a local folder remote live under `.git/gitml/artifacts/`.
All DVC imports happen inside methods, so a run that logs no artifact never imports DVC.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

_CHUNK = 8 << 20  # streamed in 8 MiB blocks: memory stays flat for any file size
_SMALL = 1 << 20  # below this a file is read whole: one read, one write
_BATCH = 64 << 20  # small files held in memory to be written in md5 order
_LEDGER = "ledger"  # the oids gitml put into a cache it shares with DVC (gc touches only these)
_OID = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
_STATE = "state.json"  # (device, inode) -> [size, mtime_ns, md5] of large files logged
_STATE_MAX = 10_000
_PROCESS_TOKEN = [f"{os.getpid()}{secrets.token_hex(4)}"]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _PROCESS_TOKEN.__setitem__(0, f"{os.getpid()}{secrets.token_hex(4)}"))


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


def hash_file(path: str | os.PathLike[str]) -> str:
    """The md5 of a file (DVC 3's `md5` hash: the plain digest of the bytes), streamed."""
    h = hashlib.md5(usedforsecurity=False)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _kernel_copy(src: str, dst: str) -> None:
    """Copy in the kernel (copy_file_range, reflink where the file system can); no user-space buffer."""
    with open(src, "rb") as fsrc, open(dst, "wb") as fdst:
        size = os.fstat(fsrc.fileno()).st_size
        done = 0
        try:
            while done < size:
                n = os.copy_file_range(fsrc.fileno(), fdst.fileno(), size - done)
                if n == 0:
                    break
                done += n
        except (OSError, AttributeError):
            fsrc.seek(done)
            fdst.seek(done)
            shutil.copyfileobj(fsrc, fdst, _CHUNK)


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ino


class ArtifactStore:
    """The artifact cache of one repository, and its remotes.

    `remote` picks the remote by default: a DVC remote name (when the repository has
    `.dvc/`), or a URL or local folder; None means DVC's default remote, else the
    embedded folder remote under `state_dir`.
    """

    def __init__(
        self,
        repo_root: str | os.PathLike[str],
        state_dir: str | os.PathLike[str],
        remote: str | None = None,
    ) -> None:
        self.root = Path(repo_root)
        self.state_dir = Path(state_dir) / "artifacts"
        self.default_remote = remote
        self.uses_dvc = (self.root / ".dvc").is_dir()
        self._lock = threading.Lock()
        self._cache: Any = None
        self._cache_path: str | None = None
        self._dirs: set[str] = set()
        self._dvc: Any = None
        self._remotes: dict[str | None, Any] = {}
        self._state_map: dict[str, list[Any]] | None = None
        self._token = secrets.token_hex(4)
        self._counter = itertools.count()

    # -- the cache -----------------------------------------------------------------------
    def _dvc_repo(self) -> Any:
        if self._dvc is None:
            try:
                from dvc.exceptions import DvcException
                from dvc.repo import Repo
            except ImportError as e:
                from gitml.exceptions import MissingDependency

                raise MissingDependency("dvc", "artifacts") from e
            try:
                self._dvc = Repo(os.fspath(self.root))
            except DvcException as e:
                raise InvalidParameterValue(f"cannot open the DVC repository at {self.root}: {e}") from e
        return self._dvc

    @property
    def cache_path(self) -> str:
        """The md5 object folder of the local cache (`.../files/md5`).

        The embedded cache's path is known without importing DVC, so logging an artifact
        costs no DVC import; a DVC repository's cache is wherever DVC's config puts it.
        """
        if self._cache_path is None:
            if self.uses_dvc:
                self._cache_path = str(self.cache.path)
            else:
                self._cache_path = os.path.join(os.path.abspath(self.state_dir / "cache"), "files", "md5")
        return self._cache_path

    @property
    def cache(self) -> Any:
        """The local object database (a dvc-data `HashFileDB`), opened on first use."""
        if self._cache is None:
            with self._lock:
                if self._cache is None:
                    if self.uses_dvc:
                        cache = self._dvc_repo().cache.local
                    else:
                        cache = self._local_odb(self.state_dir / "cache")
                    os.makedirs(cache.path, exist_ok=True)
                    self._cache = cache
        return self._cache

    @staticmethod
    def _local_odb(folder: Path | str) -> Any:
        try:
            from dvc_data.hashfile.db.local import LocalHashFileDB
            from dvc_objects.fs.local import LocalFileSystem
        except ImportError as e:
            from gitml.exceptions import MissingDependency

            raise MissingDependency("dvc-data", "artifacts") from e
        # DVC 3 keeps md5 objects under files/md5; old (2.x) caches lie at the top.
        path = os.path.join(os.path.abspath(folder), "files", "md5")
        return LocalHashFileDB(LocalFileSystem(), path, hash_name="md5")

    def object_path(self, oid: str) -> str:
        """Where object `oid` lies (or would lie) in the local cache: DVC's `xx/<rest>` layout."""
        return f"{self.cache_path}{os.sep}{oid[:2]}{os.sep}{oid[2:]}"

    def exists(self, oid: str) -> bool:
        """Whether object `oid` is in the local cache."""
        return os.path.exists(self.object_path(oid))

    def _present(self, oid: str) -> bool:
        """Whether `oid` is cached; if so, mark it as just used (gc keeps young objects,
        so an object re-logged while gc runs is not removed before its pointer lands)."""
        try:
            os.utime(self.object_path(oid))
            return True
        except FileNotFoundError:
            return False
        except PermissionError:
            return self.exists(oid)  # someone else's shared cache: presence is enough

    def _note(self, oids: Iterable[str]) -> None:
        # Remember what gitml put into DVC's cache, so gc never removes DVC's own data.
        # The embedded cache is gitml's alone: nothing to remember there.
        if not self.uses_dvc:
            return
        lines = "".join(f"{o}\n" for o in oids)
        if lines:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with open(self.state_dir / _LEDGER, "a") as f:
                f.write(lines)

    def _makedirs(self, folder: str) -> None:
        # Creating files is the cost that matters here; skip mkdir calls already made.
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)

    def _install(self, tmp: str, oid: str) -> None:
        """Move a finished temporary file into the cache under `oid` (atomic; first writer wins)."""
        final = self.object_path(oid)
        folder = os.path.dirname(final)
        self._makedirs(folder)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:
            if not os.path.exists(tmp):
                raise
            # The folder went away since we made it (a removed cache): make it again.
            self._dirs.clear()
            self._makedirs(folder)
            os.replace(tmp, final)

    def _tmp_name(self) -> str:
        # Unique across processes and stores (a token renewed in forked children) and
        # threads (a counter), with no system call per name.
        return f"{_PROCESS_TOKEN[0]}-{self._token}-{next(self._counter)}"

    def _new_tmp(self, mode: int = 0o444) -> tuple[str, int]:
        """A new empty temporary file beside the md5 folder, open for writing: (path, fd).

        Beside the md5 folder, not in it: listings of the cache must see only objects,
        and the same file system makes the final rename atomic.
        """
        folder = os.path.join(os.path.dirname(self.cache_path), "gitml-tmp")
        path = os.path.join(folder, f"{self._tmp_name()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        self._makedirs(folder)
        try:
            return path, os.open(path, flags, mode)
        except FileNotFoundError:
            self._dirs.clear()  # the cache was removed under us: make its folders again
            self._makedirs(folder)
            return path, os.open(path, flags, mode)

    def _write_object(self, oid: str, data: bytes) -> None:
        # The temporary file sits beside its object (`xx/.<random>.tmp`, as DVC names its
        # own): one folder touched per object. Created read-only at once, as DVC protects
        # cache files, with no chmod after.
        final = self.object_path(oid)
        folder = os.path.dirname(final)
        tmp = os.path.join(folder, f".{self._tmp_name()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        self._makedirs(folder)
        try:
            fd = os.open(tmp, flags, 0o444)
        except FileNotFoundError:
            self._dirs.clear()  # the cache was removed under us: make its folders again
            self._makedirs(folder)
            fd = os.open(tmp, flags, 0o444)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self._install(tmp, oid)

    def add_bytes(self, data: bytes) -> str:
        """Store bytes; returns their md5."""
        oid = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if not self._present(oid):
            self._write_object(oid, data)
        self._note([oid])
        return oid

    def add_file(
        self, path: str | os.PathLike[str], note: bool = True, defer: list[tuple[str, bytes]] | None = None
    ) -> tuple[str, int]:
        """Store one local file; returns (md5, size). Streams: memory use does not grow with size.

        With `defer`, a small new file is appended there as (md5, bytes) for the caller to
        write later (in md5 order, see `add_files`) instead of being written now.
        """
        src = os.fspath(path)
        try:
            # Raw file descriptors: the small-file path is a handful of system calls, since
            # a thousand-file folder costs what its system calls cost.
            fd = os.open(src, os.O_RDONLY)
            try:
                before = os.fstat(fd)
                small = before.st_size < _SMALL
                data = os.read(fd, before.st_size + 1) if small else b""
            finally:
                os.close(fd)
            if small and len(data) <= before.st_size:
                oid = hashlib.md5(data, usedforsecurity=False).hexdigest()
                if not self._present(oid):
                    if defer is not None:
                        defer.append((oid, data))
                    else:
                        self._write_object(oid, data)
                if note:
                    self._note([oid])
                return oid, len(data)
            known = self._known_md5(before)
            if known is not None:
                oid, size = known, before.st_size
            else:
                oid, size = self._add_large(src, before)
                self._remember_md5(os.stat(src), oid, before)
        except FileNotFoundError as e:
            if os.path.exists(src):
                raise  # a cache folder, not the user's file
            raise ResourceDoesNotExist(f"no such file to log: {src!r}") from e
        except PermissionError as e:
            if os.access(src, os.R_OK):
                raise InvalidParameterValue(f"cannot write the artifact cache: {e}") from e
            raise InvalidParameterValue(f"cannot read {src!r}: permission denied") from e
        except OSError as e:
            if e.filename not in (None, src):
                raise  # the cache's file system, not the user's file
            raise InvalidParameterValue(f"cannot read {src!r}: {e.strerror or e}") from e
        if note:
            self._note([oid])
        return oid, size

    # -- what large files hashed to, as DVC's state database keeps it -------------------------
    def _state(self) -> dict[str, list[Any]]:
        if self._state_map is None:
            try:
                with open(self.state_dir / _STATE) as f:
                    loaded = json.load(f)
                self._state_map = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self._state_map = {}  # a cache: lost or broken means rehash, nothing worse
        return self._state_map

    def _known_md5(self, st: os.stat_result) -> str | None:
        """The md5 of an unchanged file logged before (same inode, size and mtime) that the cache holds."""
        entry = self._state().get(f"{st.st_dev}:{st.st_ino}")
        if entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns and self._present(entry[2]):
            return str(entry[2])
        return None

    def _remember_md5(self, st: os.stat_result, oid: str, before: os.stat_result) -> None:
        if _stamp(st) != _stamp(before):
            return  # changed while being logged: its md5 is not the file's now
        state = self._state()
        state[f"{st.st_dev}:{st.st_ino}"] = [st.st_size, st.st_mtime_ns, oid]
        while len(state) > _STATE_MAX:
            state.pop(next(iter(state)))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / f".{_STATE}.{os.getpid()}-{secrets.token_hex(4)}"
        # Atomic replace: concurrent writers lose entries at worst, never corrupt the file.
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_dir / _STATE)

    def _add_large(self, src: str, before: os.stat_result) -> tuple[str, int]:
        # Hash the source while the kernel copies it into the cache: one pass of reading
        # at hashing speed (md5sum's floor) instead of hash-then-copy.
        tmp, fd = self._new_tmp(0o644)
        os.close(fd)
        errors: list[BaseException] = []

        def copy() -> None:
            try:
                _kernel_copy(src, tmp)
            except BaseException as e:  # re-raised in the caller's thread
                errors.append(e)

        worker = threading.Thread(target=copy, name="gitml-artifact-copy", daemon=True)
        worker.start()
        try:
            try:
                oid = hash_file(src)
            finally:
                worker.join()
            if errors:
                raise errors[0]
            after = os.stat(src)
            size = os.stat(tmp).st_size
            if _stamp(after) != _stamp(before) or size != after.st_size:
                # The file changed while we read it: the copy is what we keep, so hash that.
                oid = hash_file(tmp)
            os.chmod(tmp, 0o444)  # DVC protects cache files read-only
            self._install(tmp, oid)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return oid, size

    def add_files(self, files: Iterable[tuple[str, str]]) -> list[ManifestEntry]:
        """Store local files `(relative path, local path)`; returns their manifest entries.

        Small files are written in md5 order, in batches of up to 64 MiB: consecutive
        creations then land in the same `xx/` folder, which costs the file system far less
        than hopping between 256 folders at random.
        """
        entries = []
        pending: list[tuple[str, bytes]] = []
        held = 0
        for rel, local in files:
            before = len(pending)
            oid, size = self.add_file(local, note=False, defer=pending)
            entries.append(ManifestEntry(rel, oid, size))
            if len(pending) > before:
                held += size
                if held >= _BATCH:
                    self._write_sorted(pending)
                    pending, held = [], 0
        self._write_sorted(pending)
        self._note(e.md5 for e in entries)
        return entries

    def _write_sorted(self, pending: list[tuple[str, bytes]]) -> None:
        written: set[str] = set()
        for oid, data in sorted(pending, key=lambda item: item[0]):
            if oid not in written:  # the same bytes twice in one folder: one object
                self._write_object(oid, data)
                written.add(oid)

    def write_manifest(self, entries: Iterable[ManifestEntry]) -> tuple[str, int, int]:
        """Store a folder's `.dir` manifest; returns (its md5 with `.dir`, total size, file count).

        The bytes are exactly what dvc-data's `Tree.digest()` produces for the folder (a
        test holds the two equal), so `dvc pull` of a `.dvc` file naming it restores the
        folder; written here so that logging never pays DVC's import.
        """
        by_path = {e.relpath: e for e in entries}
        if not by_path:
            raise InvalidParameterValue("the folder to log holds no files")
        listing = [{"md5": by_path[rel].md5, "relpath": rel} for rel in sorted(by_path)]
        data = json.dumps(listing, sort_keys=True).encode("utf-8")
        dir_oid = hashlib.md5(data, usedforsecurity=False).hexdigest() + ".dir"
        if not self._present(dir_oid):
            self._write_object(dir_oid, data)
        self._note([dir_oid])
        return dir_oid, sum(e.size or 0 for e in by_path.values()), len(by_path)

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
        return str(odb.fs.unstrip_protocol(odb.path))

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
        where = str(dest.fs.unstrip_protocol(dest.path))
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
        where = str(src.fs.unstrip_protocol(src.path))
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
        where = str(dest.fs.unstrip_protocol(dest.path))
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

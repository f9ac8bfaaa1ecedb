"""The local artifact cache in DVC's layout: store files, folders and bytes under their md5.

Objects live at `files/md5/xx/<rest>` with `.dir` manifests for folders, as DVC 3 keeps
them. In a repository with `.dvc/` the cache is DVC's own (wherever its config puts it);
otherwise an embedded one lives under `.git/gitml/artifacts/cache`, whose path is known
without importing DVC, so logging costs no DVC import there.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import secrets
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gitml.artifacts.oids import check_oid
from gitml.artifacts.pointers import ManifestEntry
from gitml.exceptions import InvalidParameterValue, ResourceDoesNotExist

__all__ = ["LocalCache", "hash_file"]

_CHUNK = 8 << 20  # streamed in 8 MiB blocks: memory stays flat for any file size
_SMALL = 1 << 20  # below this a file is read whole: one read, one write
_BATCH = 64 << 20  # small files held in memory to be written in md5 order
_LEDGER = "ledger"  # the oids gitml put into a cache it shares with DVC (gc touches only these)
_STATE = "state.json"  # (device, inode) -> [size, mtime_ns, md5] of large files logged
_STATE_MAX = 10_000
_PROCESS_TOKEN = [f"{os.getpid()}{secrets.token_hex(4)}"]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _PROCESS_TOKEN.__setitem__(0, f"{os.getpid()}{secrets.token_hex(4)}"))



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


class LocalCache:
    """The local artifact cache of one repository (DVC's, or the embedded one).

    `remote` picks the remote by default for the `ArtifactStore` built on this: a DVC
    remote name (when the repository has `.dvc/`), or a URL or local folder; None means
    DVC's default remote, else the embedded folder remote under `state_dir`.
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
        """Where object `oid` lies (or would lie) in the local cache: DVC's `xx/<rest>` layout.

        `oid` is checked here, where it becomes a path: ids come from pointers and manifests
        that other clones wrote, and a crafted one must never name a file outside the cache.
        """
        check_oid(oid, "artifact object")
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

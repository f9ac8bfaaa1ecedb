"""The data a run read, by the hashes DVC already wrote: `.dvc` pointers and `dvc.lock`.

Nothing is re-hashed. Pointers are read bounded (1 MiB, regular files only), in `dvc add`'s
plain shape by one regular expression and any other shape through PyYAML; an unchanged
pointer is not even read but looked up by its index blob id in a local cache.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["data_provenance"]

_MAX_POINTER = 1 << 20  # a .dvc file or dvc.lock larger than this is not DVC's
_MD5 = re.compile(r"^[0-9a-f]{32}(\.dir)?$")


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, errors="surrogateescape"
    )
    return proc.stdout if proc.returncode == 0 else ""


def _read_small_yaml(path: Path) -> Any:
    import yaml

    try:
        if path.stat().st_size > _MAX_POINTER:
            return None
        text = path.read_text(encoding="utf-8")
        if "&" in text and re.search(r"[&*][A-Za-z0-9_]", text):  # no anchors/aliases in pointers
            return None
        return yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _outs_hashes(items: Any, base: str, out: dict[str, str]) -> None:
    if not isinstance(items, list):
        return
    for item in items[:10_000]:
        if not isinstance(item, dict):
            continue
        p, md5 = item.get("path"), item.get("md5") or item.get("hash")
        if isinstance(p, str) and isinstance(md5, str) and _MD5.match(md5) and "\0" not in p:
            key = os.path.normpath(os.path.join(base, p)).replace(os.sep, "/")
            if not (os.path.isabs(p) or key == ".." or key.startswith("../")):
                out[key] = md5


_LINE = re.compile(
    r"^(?:(?P<top>[a-z0-9_]+):|(?P<dash>- |  )(?P<key>[a-z0-9_]+): (?P<value>[^'\"{}\[\]&*!|>#]*?))\s*$"
)


_ONE_OUT = re.compile(
    r"outs:\n- md5: (?P<md5>[0-9a-f]{32}(?:\.dir)?)\n(?:  (?:size|nfiles|hash|isexec): [0-9a-z]+\n)*"
    r"  path: (?P<path>[^\n'\"#&*!|>{}\[\]:]+)\n"
)


def _read_bounded(path: str | Path) -> bytes | None:
    """A regular file's bytes, or None past `_MAX_POINTER`, for anything else, or unreadable.

    One `fstat` and one `os.read` of the known size: `open(...).read(limit + 1)` allocated
    the whole limit (1 MiB) for each 100-byte pointer, which made reading 1,000 pointers
    cost 86 ms instead of 16 ms. A FIFO or device under a pointer's name is refused unread
    (O_NONBLOCK: opening a FIFO does not wait for a writer).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_POINTER:
            return None
        raw = os.read(fd, st.st_size + 1)  # + 1: a file grown since the stat is seen
        return raw if len(raw) <= _MAX_POINTER else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_pointer(path: str | Path) -> Any:
    """A `.dvc` file as `dvc add` writes it, read without YAML; anything else goes to YAML.

    DVC writes these in one plain shape (`outs:` then `- md5: ...` / `  path: ...`). Reading
    that shape line by line takes 1,000 pointers from about 1.5 s (PyYAML, pure Python) to
    about 20 ms; a file outside the shape (quotes, nesting, comments) is parsed as YAML.
    """
    raw = _read_bounded(path)
    try:
        text = raw.decode("utf-8") if raw is not None else None
    except UnicodeDecodeError:
        return None
    return None if text is None else _parse_pointer(text, path)


def _parse_pointer(text: str, path: str | Path) -> Any:
    """`_read_pointer` past the read: the plain shape by regex, the rest through YAML."""
    m = _ONE_OUT.fullmatch(text)
    if m is not None:  # `dvc add FILE`'s exact shape: one out
        return {"outs": [{"md5": m.group("md5"), "path": m.group("path")}]}
    outs: list[dict[str, str]] = []
    section = None
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            return _read_small_yaml(Path(path))
        if m.group("top"):
            section = m.group("top")
            if line.rstrip() != f"{section}:":
                return _read_small_yaml(Path(path))
            continue
        if section != "outs":
            continue
        if m.group("dash") == "- ":
            outs.append({})
        elif not outs:
            return _read_small_yaml(Path(path))
        outs[-1][m.group("key")] = m.group("value").strip()
    return {"outs": outs}


def _pointer_hashes(base: str, name: str, out: dict[str, str]) -> None:
    """The hashes of one `.dvc` pointer (`name`: repo-relative, as git lists it) into `out`.

    `dvc add FILE`'s own shape (one out, a plain file name beside the pointer) is keyed
    without path arithmetic; anything else goes through `_outs_hashes`' checks.
    """
    raw = _read_bounded(f"{base}/{name}")
    if raw is None:
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    folder = name.rpartition("/")[0]
    m = _ONE_OUT.fullmatch(text)
    if m is not None:
        p = m.group("path")
        if p == p.strip() and p not in (".", "..") and not any(c in p for c in "/\\\0"):
            out[f"{folder}/{p}" if folder else p] = m.group("md5")
            return
    data = _parse_pointer(text, f"{base}/{name}")
    if isinstance(data, dict):
        _outs_hashes(data.get("outs"), folder, out)


_CACHE_LIMIT = 200_000  # pointer cache entries; past this it starts again from nothing


def _load_cache(cache_file: Path) -> dict[str, Any]:
    try:
        if cache_file.stat().st_size > (64 << 20):
            return {}
        cache = json.loads(cache_file.read_bytes())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) and len(cache) <= _CACHE_LIMIT else {}


def data_provenance(
    root: Path,
    project_dir: Path,
    untracked: list[str] | None = None,
    changed: set[str] | None = None,
    cache_file: Path | None = None,
) -> dict[str, str]:
    """{repo-relative path: md5} of DVC-tracked data, from `.dvc` pointers and `dvc.lock`.

    `untracked` (repo-relative names, from the `git status` the code provenance already
    ran) saves a second walk of the working tree: then only the index is listed.
    With `changed` (the tracked paths that status saw changed) and `cache_file`, a pointer
    that is unchanged is not read at all: its hashes are looked up by its index blob id
    (content-addressed, so never stale), and only new or edited pointers are read. 1,000
    pointers then cost one `git ls-files` and a JSON load instead of 4,000 system calls.
    """
    rel = os.path.relpath(project_dir, root).replace(os.sep, "/")
    specs = [
        f":(glob){rel}/**/{pat}" if rel != "." else f":(glob)**/{pat}"
        for pat in ("*.dvc", "dvc.lock")
    ]
    walk = [] if untracked is not None else ["--others", "--exclude-standard"]
    use_cache = cache_file is not None and changed is not None and untracked is not None
    listed = _git(root, "ls-files", "-z", "--cached", *(["-s"] if use_cache else walk), "--", *specs)
    blobs: dict[str, str] = {}
    names: list[str] = []
    if use_cache:
        for entry in listed.split("\0"):
            meta, tab, name = entry.partition("\t")
            fields = meta.split()
            if not tab or len(fields) != 3 or (fields[2] != "0" and name in blobs):
                continue
            if fields[2] == "0" and name not in (changed or ()):
                blobs[name] = fields[1]
            else:  # edited, or conflicted (listed once per stage): read from the file
                blobs[name] = ""
        names = list(blobs)
        blobs = {k: v for k, v in blobs.items() if v}
    else:
        names = listed.split("\0")
    if untracked is not None:
        prefix = "" if rel == "." else rel + "/"
        names += [
            n
            for n in untracked
            if n.startswith(prefix) and (n.endswith(".dvc") or n.endswith("dvc.lock"))
        ]
    cache = _load_cache(cache_file) if use_cache and cache_file is not None else {}
    added = False
    out: dict[str, str] = {}
    base = str(root)
    for name in names:
        if name.endswith(".dvc") and not name.endswith("/.dvc"):
            blob = blobs.get(name)
            if blob is None:
                _pointer_hashes(base, name, out)
                continue
            key = f"{blob}:{name.rpartition('/')[0]}"
            hit = cache.get(key)
            if not isinstance(hit, list):
                got: dict[str, str] = {}
                _pointer_hashes(base, name, got)
                hit = cache[key] = [[k, v] for k, v in got.items()]
                added = True
            for item in hit:
                if isinstance(item, list) and len(item) == 2:
                    out[str(item[0])] = str(item[1])
        elif name == "dvc.lock" or name.endswith("/dvc.lock"):
            data = _read_small_yaml(root / name)
            stages = data.get("stages") if isinstance(data, dict) else None
            if isinstance(stages, dict):
                for stage in list(stages.values())[:10_000]:
                    if isinstance(stage, dict):
                        _outs_hashes(stage.get("deps"), os.path.dirname(name), out)
                        _outs_hashes(stage.get("outs"), os.path.dirname(name), out)
    if added and cache_file is not None:
        _save_cache(cache_file, cache)
    return out


def _save_cache(cache_file: Path, cache: dict[str, Any]) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f"{cache_file.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(cache, separators=(",", ":")))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a cache that cannot be written only costs the next run its reads

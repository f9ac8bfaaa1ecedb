"""Benchmark: the Git-tag registry with many models, gitml against `gto show` on the same repository.

Builds a repository holding N models (default 1,000) with 10 registry tags each (5 versions,
5 stage/alias events: 10,000 tags) through one `git fast-import` stream, then measures, in
one run:
  - gitml warm: resolve `models:/<name>/Production` and list every model (state cached);
  - gitml cold: read and index every tag from scratch, in-process;
  - gitml CLI: `gitml models current NAME --stage production --json` as a new process;
  - GTO: `gto show --json` (every model) and `gto show NAME#production` as new processes.
Prints medians and the ratios against GTO. Usage: python bench/bench_registry.py [--models N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["build_repo", "main"]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
# The gitml command line of this checkout, whatever environment runs the benchmark.
GITML = [sys.executable, "-c", "from gitml.cli import main; main()"]


def _gto() -> str:
    found = BIN / "gto"
    if found.exists():
        return str(found)
    other = shutil.which("gto")
    if other is None:
        raise SystemExit(
            "gto is not installed here: pip install gto (the peer this benchmark compares with)"
        )
    return other


_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "PYTHONPATH": str(ROOT),
}


def _data(text: str) -> str:
    raw = text.encode()
    return f"data {len(raw)}\n{text}\n"


def build_repo(path: Path, models: int) -> int:
    """A repository with `models` models, 10 registry tags each; returns the number of tags."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=_ENV)
    t0 = 1_700_000_000
    out: list[str] = []
    mark = 0
    for i in range(models):
        name = f"model-{i:04d}"
        marks = []
        for k in range(1, 6):
            mark += 1
            marks.append(mark)
            out.append(
                f"commit refs/heads/main\nmark :{mark}\ncommitter Bench <bench@example.com> {t0 + mark} +0000\n"
            )
            out.append(_data(f"train {name} v{k}"))
            out.append(f"M 644 inline model.txt\n{_data(f'{name} {k}')}")
        when = t0 + 10_000_000 + i * 20
        for k in range(1, 6):
            message = (
                f"# register {name} version {k}\ngitml: 1\nmodel: {name}\nversion: {k}\nsemver: v{k}.0.0\n"
                f"run_id: {i:016x}{k:016x}\nartifact_path: model\nsource: runs:/{i:016x}{k:016x}/model\n"
            )
            out.append(
                f"tag {name}@v{k}.0.0\nfrom :{marks[k - 1]}\ntagger Bench <bench@example.com> {when + k} +0000\n"
            )
            out.append(_data(message))
        # production: v1, then v3, then v3 unassigned: v1 is current again.
        events = [
            ("production", 1, 0),
            ("staging", 2, 1),
            ("production", 3, 2),
            ("production!", 3, 3),
            ("champion", 4, 4),
        ]
        for stage, k, n in events:
            out.append(
                f"tag {name}#{stage}#{n + 1}\nfrom :{marks[k - 1]}\n"
                f"tagger Bench <bench@example.com> {when + 6 + n} +0000\n"
            )
            out.append(_data(f"# {stage} {name} v{k}\ngitml: 1\nmodel: {name}\nversion: {k}\n"))
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=path,
        input="".join(out).encode(),
        check=True,
        env=_ENV,
    )
    return models * 10


def _median(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _proc(args: list[str], cwd: Path, timeout: float = 600) -> Callable[[], str]:
    def run() -> str:
        proc = subprocess.run(
            args, cwd=cwd, capture_output=True, text=True, env=_ENV, timeout=timeout
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {proc.stderr.strip()[:500]}")
        return proc.stdout

    return run


def main() -> None:
    """Build the repository, time both tools, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--gto-repeat", type=int, default=3)
    args = parser.parse_args()

    from gitml.registry import access as registry_module
    from gitml.registry.client import RegistryClient
    from gitml.registry.resolve import resolve_models_uri

    with tempfile.TemporaryDirectory(prefix="gitml-bench-registry-") as tmp:
        repo = Path(tmp) / "repo"
        start = time.perf_counter()
        ntags = build_repo(repo, args.models)
        print(f"built {args.models} models, {ntags} tags in {time.perf_counter() - start:.1f}s")
        os.chdir(repo)
        client = RegistryClient(str(repo))
        target = f"model-{args.models // 2:04d}"
        uri = f"models:/{target}/Production"
        reg = client._registry()
        # Tags gitml creates stay loose files until `git gc` packs them: time that case too.
        reg.state()
        time.sleep(0.1)  # past the racy window: the stamp may be cached now
        resolve_models_uri(uri, registry=reg)
        t_resolve_loose, _ = _median(lambda: resolve_models_uri(uri, registry=reg), args.repeat)
        client.search_registered_models(max_results=1_000_000)
        t_list_loose, _ = _median(
            lambda: client.search_registered_models(max_results=1_000_000), args.repeat
        )
        subprocess.run(["git", "pack-refs", "--all"], cwd=repo, check=True, env=_ENV)
        time.sleep(0.1)

        from gitml.registry.tagindex import INDEX_FILE

        def cold() -> object:
            registry_module._STATES.clear()
            (reg.repo.state_dir / INDEX_FILE).unlink(missing_ok=True)
            return reg.state()

        def cold_indexed() -> object:
            registry_module._STATES.clear()
            return reg.state()

        t_cold, state = _median(cold, max(3, args.repeat // 5))
        t_cold_indexed, _ = _median(cold_indexed, max(3, args.repeat // 5))
        assert len(state.models) == args.models, len(state.models)  # type: ignore[attr-defined]
        resolve_models_uri(uri, registry=reg)  # warm up
        t_resolve, resolved = _median(lambda: resolve_models_uri(uri, registry=reg), args.repeat)
        t_list, listed = _median(
            lambda: client.search_registered_models(max_results=1_000_000), args.repeat
        )
        assert len(listed) == args.models  # type: ignore[arg-type]
        t_cli, cli_out = _median(
            _proc(
                [
                    *GITML,
                    "models",
                    "current",
                    target,
                    "--stage",
                    "production",
                    "--json",
                ],
                repo,
            ),
            max(3, args.repeat // 4),
        )
        # GTO runs on the packed repository (its fastest case).
        t_gto_one, gto_one = _median(
            _proc([_gto(), "show", f"{target}#production", "--json"], repo),
            args.gto_repeat,
        )
        t_gto_all, gto_all = _median(_proc([_gto(), "show", "--json"], repo), args.gto_repeat)

        import json

        ours = resolved.rsplit("/", 2)[-2]  # type: ignore[union-attr]
        theirs = json.loads(gto_one)[0]["version"]  # type: ignore[arg-type]
        assert theirs == "v1.0.0" and json.loads(cli_out)["semver"] == "v1.0.0", (theirs, cli_out)  # type: ignore[arg-type]
        assert len(json.loads(gto_all)) == args.models  # type: ignore[arg-type]
        print(f"{uri} -> {resolved} (run {ours}); gto agrees: {theirs}")
        rows = [
            ("gitml resolve models:/NAME/Production, warm, loose tags", t_resolve_loose),
            ("gitml list all models, warm, loose tags", t_list_loose),
            ("gitml resolve models:/NAME/Production, warm, packed tags", t_resolve),
            ("gitml list all models (search_registered_models), warm, packed", t_list),
            ("gitml read+index all tags, cold in-process (git for-each-ref)", t_cold),
            ("gitml read+index all tags, cold in-process (on-disk tag index)", t_cold_indexed),
            ("gitml models current NAME --stage production (new process)", t_cli),
            ("gto show NAME#production (new process)", t_gto_one),
            ("gto show --json, all models (new process)", t_gto_all),
        ]
        for label, seconds in rows:
            print(f"  {label:<62} {seconds * 1000:10.1f} ms")
        print(
            f"ratio resolve warm vs gto show NAME#production: {t_gto_one / t_resolve:,.0f}x faster"
        )
        print(f"ratio list warm vs gto show --json:              {t_gto_all / t_list:,.0f}x faster")
        print(
            f"ratio loose-tag resolve/list vs gto: {t_gto_one / t_resolve_loose:,.0f}x / "
            f"{t_gto_all / t_list_loose:,.0f}x faster"
        )
        print(f"ratio CLI (process) vs gto show NAME#production: {t_gto_one / t_cli:,.1f}x faster")
        print(f"ratio cold index vs gto show --json:             {t_gto_all / t_cold:,.1f}x faster")


if __name__ == "__main__":
    main()

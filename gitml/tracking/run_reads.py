"""Reading runs off the metadata branch: a run directory's files decoded into a Run entity.

`RunReads` is the reading half of the Tracker (gitml/tracking/tracker.py holds the writing
half: writers, flushing, run lifecycle); `run_from_files` is the run-directory decoder.
"""

from __future__ import annotations

from typing import Any

from gitml import constants as C
from gitml.entities import Metric, Run, RunData, RunInfo, RunInputs
from gitml.exceptions import ResourceDoesNotExist
from gitml.store.repo import GitRepo
from gitml.tracking import layout
from gitml.tracking.inputs import decode_inputs
from gitml.tracking.validation import check_run_id

__all__ = ["RunReads", "run_from_files"]


class RunReads:
    """Reads of one repository's runs; each flushes this process's pending writes first."""

    repo: GitRepo

    def tree(self) -> str:
        """The tree of the branch tip."""
        raise NotImplementedError

    def _flush_if_dirty(self, run_id: str | None = None) -> None:
        raise NotImplementedError

    def run_ids(self, tree: str) -> list[str]:
        """The id of every run folder in `tree` (the one walker: layout.RUN_DIRS)."""
        return layout.RUN_DIRS.names(self.repo, tree)

    def read_run_files(self, tree: str, run_id: str) -> dict[str, Any]:
        """The decoded files of a run directory (meta, params, tags, metrics, inputs)."""
        base = C.run_dir(run_id)
        files = self.repo.list_dir(tree, base)
        if C.RUN_META not in files:
            raise ResourceDoesNotExist(f"run '{run_id}' not found")
        out: dict[str, Any] = {}
        for name in (C.RUN_META, C.RUN_PARAMS, C.RUN_TAGS, C.RUN_METRICS):
            entry = files.get(name)
            out[name] = layout.decode(f"{base}/{name}", self.repo.objects.read_blob(entry.sha)) if entry else {}
        entry = files.get(C.RUN_INPUTS)
        out[C.RUN_INPUTS] = decode_inputs(f"{base}/{C.RUN_INPUTS}", self.repo.objects.read_blob(entry.sha) if entry else None)
        return out

    def get_run(self, run_id: str) -> Run:
        """A run as it is on the branch, with this process's pending writes flushed first."""
        check_run_id(run_id)
        self._flush_if_dirty(run_id)
        files = self.read_run_files(self.tree(), run_id)
        return run_from_files(files)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, in step then timestamp order."""
        check_run_id(run_id)
        self._flush_if_dirty(run_id)
        tree = self.tree()
        hist = f"{C.run_dir(run_id)}/{C.RUN_HISTORY_DIR}"
        if self.repo.lookup(tree, f"{C.run_dir(run_id)}/{C.RUN_META}") is None:
            raise ResourceDoesNotExist(f"run '{run_id}' not found")
        points = []
        for name, entry in self.repo.list_dir(tree, hist).items():
            for k, v, t, s in layout.decode_history(f"{hist}/{name}", self.repo.objects.read_blob(entry.sha)):
                if k == key:
                    points.append(Metric(k, v, t, s))
        points.sort(key=lambda m: (m.step, m.timestamp))
        return points

    def read_artifacts(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's artifact pointers {artifact_path: pointer}."""

        check_run_id(run_id)
        self._flush_if_dirty(run_id)
        tree = self.tree()
        if self.repo.lookup(tree, f"{C.run_dir(run_id)}/{C.RUN_META}") is None:
            raise ResourceDoesNotExist(f"run '{run_id}' not found")
        path = f"{C.run_dir(run_id)}/{C.RUN_ARTIFACTS}"
        data = self.repo.read_file(tree, path)
        if not data:
            return {}
        result: dict[str, dict[str, Any]] = layout.decode(path, data)
        return result


def run_from_files(files: dict[str, Any]) -> Run:
    """Build a Run entity from a run directory's decoded files."""
    meta = files[C.RUN_META]
    latest = files[C.RUN_METRICS]
    metric_objs = tuple(
        Metric(k, layout.decode_value(v["value"]), v["timestamp"], v["step"]) for k, v in sorted(latest.items())
    )
    info = RunInfo(
        run_id=meta["run_id"],
        experiment_id=meta["experiment_id"],
        user_id=meta.get("user_id"),
        status=meta["status"],
        start_time=meta.get("start_time"),
        end_time=meta.get("end_time"),
        lifecycle_stage=meta["lifecycle_stage"],
        artifact_uri=meta.get("artifact_uri") or f"runs:/{meta['run_id']}",
        run_name=meta.get("run_name"),
    )
    data = RunData(
        metrics={m.key: m.value for m in metric_objs},
        params=dict(files[C.RUN_PARAMS]),
        tags=dict(files[C.RUN_TAGS]),
        metric_objs=metric_objs,
    )
    return Run(info, data, files.get(C.RUN_INPUTS) or RunInputs())

"""Resuming a stored run: the selection and options it was started with, and the variants it already finished."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnbench.errors import UsageError
from cnnbench.store.run import Run, RunStore

__all__ = ["Resume", "load_resume", "run_options"]


@dataclass(frozen=True)
class Resume:
    """A stored run to finish, with what ``cnnbench run`` needs to select the same variants again."""

    run: Run
    paths: list[str]
    filters: dict[str, Any] = field(default_factory=dict)
    """keyword, devices, dtypes and any other selection the run stored under meta["filters"]."""
    shard: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """isolate, timeout and max_case_bytes as the run was started (run_options)."""

    @functools.cached_property
    def done(self) -> frozenset[str]:
        """Ids of the variants that have a stored row (a row cut short by a kill does not count).

        Built once: a loop asking ``v.id in resume.done`` per variant stays O(n), not O(n^2)."""
        return frozenset(r.variant_id for r in self.run.results)

    def finished(self) -> bool:
        """Whether there is nothing left to run: the run completed, no row of it was lost, and its case files
        are those it ran (their hash, so that they need not be loaded again to know)."""
        from cnnbench.casefile.load import case_files_hash

        run = self.run
        if not run.complete or run.dropped_lines or run.meta.get("missing_shards"):
            return False
        selected = run.meta.get("variants_selected")
        if not isinstance(selected, int):
            return False
        if run.stored_version is None:
            stored, torn = len(run.results), False
        else:  # loaded without its rows (load_resume(rows=False)): their lines counted, none parsed
            stored, torn = RunStore.count_rows(run)
        if torn or stored < selected:
            return False
        return run.meta.get("case_files_hash") == case_files_hash(self.paths)


def run_options(*, isolate: bool, timeout: float | None, max_case_bytes: int | None) -> dict[str, Any]:
    """The options of a run stored in its meta.json, so --resume runs the rest the same way."""
    return {"isolate": isolate, "timeout": timeout, "max_case_bytes": max_case_bytes}


def load_resume(spec: str, reports: str | os.PathLike[str], *, rows: bool = True) -> Resume:
    """The stored run spec (a run directory or id) with its selection; UsageError if it cannot be resumed.

    rows=False: its meta only, enough to know whether anything is left to run (``Resume.finished``)."""
    # Only counted and listed from here on (what is done, the summary): passed rows without their figures.
    run = RunStore(reports).load(spec, summary=True, rows=rows)
    meta = run.meta
    if meta.get("migrated_from") is not None:
        raise UsageError(
            f"run {run.run_id} was stored by an older cnnbench (schema {meta['migrated_from']}); "
            "it can be reported but not resumed: start a new run"
        )
    paths = meta.get("paths")
    if not isinstance(paths, list) or not paths:
        raise UsageError(
            f"{run.path}/meta.json does not say which case files the run read; it cannot be resumed"
        )
    cwd = meta.get("cwd")
    if isinstance(cwd, str) and Path(cwd) != Path.cwd():
        # Paths were stored as given; make relative ones relative to where the run was started.
        paths = [p if Path(p).is_absolute() else str(Path(cwd) / p) for p in paths]
    filters: dict[str, Any] = meta["filters"] if isinstance(meta.get("filters"), dict) else {}
    options: dict[str, Any] = meta["options"] if isinstance(meta.get("options"), dict) else {}
    shard = meta.get("shard") if isinstance(meta.get("shard"), str) else None
    return Resume(
        run=run, paths=[str(p) for p in paths], filters=dict(filters), shard=shard, options=dict(options)
    )

"""Stored runs: one ``RunStore`` per reports folder writes, reopens, finds and loads runs.

A run is a directory ``<root>/runs/<run_id>/`` holding ``meta.json`` (the run's selection, options and
environment) and ``results.jsonl`` (one row per variant, appended and flushed as each finishes), with
``<root>/latest`` naming the most recent run.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnbench.errors import UsageError
from cnnbench.store.result import SCHEMA_VERSION, Result, columns, count_statuses, migrate

__all__ = ["DEFAULT_ROOT", "Run", "RunStore", "RunWriter", "new_run_id", "row_order"]

#: Where runs are stored unless --reports or CNNBENCH_REPORTS says otherwise.
DEFAULT_ROOT = "reports"
_RESULTS = "results.jsonl"
_META = "meta.json"
_LATEST = "latest"


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a few random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Run:
    """A stored run: its metadata and its rows."""

    path: Path
    meta: dict[str, Any]
    results: list[Result]
    dropped_lines: int = 0
    """Rows that could not be read (a line cut short by a kill)."""
    stored_version: int | None = None
    """The schema version of its rows on disk when they were not loaded (``RunStore.load(rows=False)``): then
    ``iter_rows`` reads them one at a time; None: results holds them."""

    def iter_rows(self) -> Iterator[Result]:
        """Its rows: those loaded, or, for a run loaded without them, read from its results.jsonl one at a time
        (a merge of a million rows never holds them all); rows that cannot be read are counted in dropped_lines.
        In file order: a pool's rows are sorted only when loaded."""
        if self.stored_version is None:
            yield from self.results
            return
        for row in _read_rows(self.path / _RESULTS, self.stored_version):
            if row is None:
                self.dropped_lines += 1
            else:
                yield row

    @property
    def run_id(self) -> str:
        """The run's id."""
        return str(self.meta.get("run_id", self.path.name))

    @property
    def complete(self) -> bool:
        """Whether the run finished every variant it selected."""
        return bool(self.meta.get("complete"))


class RunWriter:
    """Writes one run: meta.json at start and end, and one JSONL row per variant, flushed as it finishes.

    A run killed at any point keeps every finished row; its meta says complete: false. Made by
    ``RunStore.create`` (a new run) or ``RunStore.reopen`` (appending to a stored one).
    """

    def __init__(self, path: Path, meta: dict[str, Any], counts: Counter[str] | None = None) -> None:
        self.path = path
        self.run_id = str(meta["run_id"])
        self.meta = meta
        self._write_meta()
        self._file = open(self.path / _RESULTS, "a", encoding="utf-8")  # noqa: SIM115
        self.counts: Counter[str] = counts if counts is not None else Counter()

    def append(self, result: Result) -> None:
        """Store one row now (flushed to the OS, so it survives the process being killed)."""
        self._file.write(json.dumps(result.to_json(), allow_nan=True) + "\n")
        self._file.flush()
        self.counts[result.status] += 1

    def close(self, *, complete: bool) -> None:
        """Finish the run: counts, end time and whether every selected variant ran."""
        self._file.close()
        self.meta.update(finished_at=_now(), complete=complete, counts=dict(self.counts))
        if complete and self.meta.get("missing_shards"):
            # A merged run whose missing shards' variants were run by --resume: nothing is missing any more.
            self.meta["missing_shards"] = []
        self._write_meta()

    def _write_meta(self) -> None:
        tmp = self.path / (_META + ".tmp")
        tmp.write_text(json.dumps(self.meta, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.path / _META)


class RunStore:
    """The runs stored under one reports folder (``root``): create, reopen, resolve, load and save them."""

    def __init__(self, root: str | os.PathLike[str] = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def create(self, meta: dict[str, Any], run_id: str | None = None) -> RunWriter:
        """Start a new run under root/runs (and point root/latest at it); meta is stored with the header."""
        run_id = run_id or new_run_id()
        path = self.root / "runs" / run_id
        path.mkdir(parents=True, exist_ok=False)
        header = {
            "schema_version": SCHEMA_VERSION,
            "columns": columns(),
            "run_id": run_id,
            "started_at": _now(),
            "finished_at": None,
            "complete": False,
            **meta,
        }
        writer = RunWriter(path, header)
        self._point_latest(run_id)
        return writer

    @staticmethod
    def reopen(run: Run) -> RunWriter:
        """Append to a stored run (``cnnbench run --resume``): its meta says complete: false until closed again,
        and a last row cut short by a kill is cut off, so the next row starts on a line of its own."""
        results = run.path / _RESULTS
        data = results.read_bytes() if results.exists() else b""
        if data and not data.endswith(b"\n"):
            with open(results, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
        meta = {**run.meta, "complete": False, "finished_at": None}
        meta["resumed_at"] = [*meta.get("resumed_at", []), _now()]
        meta.setdefault("run_id", run.run_id)
        writer = RunWriter(run.path, meta, count_statuses(run.results))
        if run.path.parent.name == "runs":
            RunStore(run.path.parent.parent)._point_latest(run.run_id)
        return writer

    def point_latest(self, run_id: str) -> None:
        """Make run_id (a run under root/runs) the latest run."""
        self._point_latest(run_id)

    def _point_latest(self, run_id: str) -> None:
        (self.root / _LATEST).write_text(run_id + "\n", encoding="utf-8")

    def latest(self) -> Path:
        """The directory of the most recent run under root."""
        pointer = self.root / _LATEST
        if pointer.exists():
            candidate = self.root / "runs" / pointer.read_text(encoding="utf-8").strip()
            if candidate.is_dir():
                return candidate
        runs_dir = self.root / "runs"
        runs = sorted(p for p in runs_dir.glob("*") if p.is_dir()) if runs_dir.is_dir() else []
        if not runs:
            raise UsageError(f"no stored run under {self.root}/runs; run `cnnbench run cases/` first")
        return runs[-1]

    def resolve(self, spec: str | None) -> Path:
        """A run directory from a path (a run's, or a reports folder's for its latest), a run id under root,
        or None for the latest."""
        if spec is None:
            return self.latest()
        p = Path(spec)
        if p.is_dir():
            # A reports folder (runs/ and latest inside) stands for its latest run.
            if not (p / _META).exists() and not (p / _RESULTS).exists() and (p / "runs").is_dir():
                return RunStore(p).latest()
            return p
        if p.name in (_RESULTS, _META) and p.parent.is_dir():
            return p.parent
        candidate = self.root / "runs" / spec
        if candidate.is_dir():
            return candidate
        raise UsageError(f"no stored run {spec!r} (neither a directory nor a run id under {self.root}/runs)")

    def load(self, spec: str | None = None, *, summary: bool = False, rows: bool = True) -> Run:
        """Load a stored run, migrating older schemas; rows cut short by a kill are dropped and counted.

        summary: each row as a run's summary keeps it (Result.summary_row: a passed check without its figures),
        for callers that only count and list, such as ``cnnbench run --resume``. rows=False: the meta only, the
        rows left on disk for ``Run.iter_rows`` to stream."""
        path = self.resolve(spec)
        meta = _read_meta(path / _META)
        version = meta.get("schema_version", 0)  # runs written before the header existed are version 0
        results: list[Result] = []
        dropped = 0
        if rows:
            with _collection_paused():
                for row in _read_rows(path / _RESULTS, version):
                    if row is None:
                        dropped += 1
                    else:
                        results.append(row.summary_row() if summary else row)
        meta.setdefault("run_id", path.name)
        if not rows:
            if version != SCHEMA_VERSION:
                meta.update(migrated_from=version, schema_version=SCHEMA_VERSION, columns=columns())
            return Run(path=path, meta=meta, results=[], stored_version=version)
        if meta.get("pool"):
            # A pool stores rows as they finish, in an order that depends on scheduling; sorted on load, the run
            # reads the same however its workers raced.
            results.sort(key=row_order)
        if version != SCHEMA_VERSION:
            meta.update(migrated_from=version, schema_version=SCHEMA_VERSION, columns=columns())
        return Run(path=path, meta=meta, results=results, dropped_lines=dropped)

    @staticmethod
    def count_rows(run: Run) -> tuple[int, bool]:
        """The rows stored in run's results.jsonl, counted without parsing them (a million in well under a
        second), and whether its last line was cut short (a kill mid-write: no newline at its end)."""
        results = run.path / _RESULTS
        if not results.exists():
            return 0, False
        count, last = 0, b"\n"
        with open(results, "rb") as f:
            while block := f.read(1 << 20):
                count += block.count(b"\n")
                last = block[-1:]
        return count, last != b"\n"

    def new_run_dir(self) -> Path:
        """A fresh run directory name under root/runs (not created), e.g. for a merged run."""
        return self.root / "runs" / new_run_id()

    @staticmethod
    def save(run: Run, path: str | os.PathLike[str], rows: Iterable[Result] | None = None) -> Path:
        """Write a whole run (meta.json and results.jsonl, current schema) into the directory path, which must
        not exist yet or be empty; used to store merged shards and synthetic runs.

        rows: the rows to write instead of run.results, one at a time as they come (a merge streams its shards'
        rows through); run.meta is written after the last of them, so what they add to it on the way (counts)
        is stored."""
        out = Path(path)
        if out.exists() and any(out.iterdir()):
            raise UsageError(f"{out} exists and is not empty; choose a new directory")
        out.mkdir(parents=True, exist_ok=True)
        with open(out / _RESULTS, "w", encoding="utf-8") as f:
            for result in run.results if rows is None else rows:
                f.write(json.dumps(result.to_json(), allow_nan=True) + "\n")
        meta = {**run.meta, "schema_version": SCHEMA_VERSION, "columns": columns()}
        meta.setdefault("counts", dict(count_statuses(run.results)))
        (out / _META).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        return out


def _read_rows(results_path: Path, version: int) -> Iterator[Result | None]:
    """The rows of a results.jsonl, brought to the current schema, one at a time; None for a line that cannot
    be read (cut short by a kill)."""
    if not results_path.exists():
        return
    decode = json.JSONDecoder().decode
    with open(results_path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                yield Result.from_json(migrate(decode(line), version))
            except (json.JSONDecodeError, TypeError, AttributeError):
                yield None


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while many rows are built: each row allocates a few containers and
    none is garbage, yet every ~700 allocations start a collection that walks the young objects and, every so
    often, everything the process holds (a run's variants too); paused, loading 48,000 rows takes half the time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def row_order(result: Result) -> tuple[bool, str, int, str]:
    """The deterministic order of a run's rows: checks before benchmarks, then by case file, line and id."""
    return (result.kind == "bench", result.file, result.line, result.variant_id)


def _read_meta(meta_path: Path) -> dict[str, Any]:
    """A run's meta.json, its schema version checked ({} when the file is missing: a version 0 run)."""
    try:
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    except json.JSONDecodeError as exc:
        raise UsageError(f"{meta_path}: not valid JSON ({exc})") from None
    version = meta.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise UsageError(
            f"{meta_path}: schema_version {version!r} is not a schema version (a whole number >= 0)"
        )
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{meta_path.parent}: schema_version {version} is newer than this cnnbench understands "
            f"({SCHEMA_VERSION}); upgrade cnnbench to read it"
        )
    return meta

"""Result rows and stored runs: a versioned schema, JSONL appended and flushed per variant, and loading."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cnnbench.errors import UsageError

__all__ = [
    "SCHEMA_VERSION",
    "STATUSES",
    "Result",
    "Run",
    "RunWriter",
    "columns",
    "count_statuses",
    "latest_run",
    "load_run",
    "migrate",
    "save_run",
    "summary_line",
]

#: Bumped whenever a column is added, changes meaning or disappears; loading an older run migrates it
#: through _MIGRATIONS, one version at a time.
SCHEMA_VERSION = 2
#: Every status a result can have, in the order the summary line lists them.
STATUSES = ("passed", "failed", "error", "skipped", "xfail", "xpass", "mistrusted")
#: Statuses that make a run (and the CLI) fail.
FAILING = frozenset({"failed", "error"})

_RESULTS = "results.jsonl"
_META = "meta.json"
_LATEST = "latest"


@dataclass
class Result:
    """One variant's outcome: the row stored, reported and compared."""

    variant_id: str
    """``case_id[device-dtype]``."""
    case_id: str
    file: str
    line: int
    target: str
    """The op, module or Sequential called."""
    device: str
    dtype: str
    status: str
    """One of STATUSES."""
    message: str = ""
    """Why it failed, errored, was skipped or xfailed; empty when passed."""
    reason: str = ""
    """The declared reason of a skip or xfail rule."""
    duration_s: float = 0.0
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    mismatches: int | None = None
    numel: int | None = None
    atol: float | None = None
    rtol: float | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    """The first mismatching points: {index, expected, got}."""
    source: str = ""
    kind: str = "check"
    """"check" for a numerics variant, "bench" for a timed one."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Extra measured values (timings, FLOP counts, ...), by name with units."""
    output_digest: str | None = None
    """Short sha256 of the output tensors' dtype, shape and bytes: equal digests mean bitwise-equal outputs."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every column."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        """Build from a stored row; unknown keys are ignored, missing ones take their defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _migrate_0_to_1(row: dict[str, Any]) -> None:
    """Version 0 (before meta.json carried a schema_version) had no kind, metrics, source or examples columns,
    and rows may lack variant_id, which is rebuilt from case_id, device and dtype."""
    row.setdefault("kind", "check")
    row.setdefault("metrics", {})
    row.setdefault("source", "")
    row.setdefault("examples", [])
    if "variant_id" not in row and {"case_id", "device", "dtype"} <= row.keys():
        row["variant_id"] = f"{row['case_id']}[{row['device']}-{row['dtype']}]"


def _migrate_1_to_2(row: dict[str, Any]) -> None:
    """Version 2 added output_digest; older rows have none, so bitwise comparisons skip them."""
    row.setdefault("output_digest", None)


#: version N -> the function that turns a row of version N into one of version N + 1, in place.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], None]] = {0: _migrate_0_to_1, 1: _migrate_1_to_2}


def migrate(row: dict[str, Any], version: int) -> dict[str, Any]:
    """A stored row of schema version, brought up to SCHEMA_VERSION one step at a time."""
    for v in range(version, SCHEMA_VERSION):
        _MIGRATIONS[v](row)
    return row


def columns() -> list[str]:
    """The stored column names, in order."""
    return [f.name for f in fields(Result)]


def count_statuses(results: Iterable[Result]) -> Counter[str]:
    """How many results have each status."""
    return Counter(r.status for r in results)


def summary_line(counts: Counter[str]) -> str:
    """'3 passed, 1 failed, 0 skipped' plus any other status that occurred."""
    parts = [f"{counts.get('passed', 0)} passed", f"{counts.get('failed', 0)} failed"]
    parts.extend(f"{counts[s]} {s}" for s in STATUSES[2:] if counts.get(s) and s != "skipped")
    parts.append(f"{counts.get('skipped', 0)} skipped")
    return ", ".join(parts)


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a few random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


class RunWriter:
    """Writes one run: meta.json at start and end, and one JSONL row per variant, flushed as it finishes.

    A run killed at any point keeps every finished row; its meta says complete: false.
    """

    def __init__(self, root: str | os.PathLike[str], meta: dict[str, Any], run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        self.root = Path(root)
        self.path = self.root / "runs" / self.run_id
        self.path.mkdir(parents=True, exist_ok=False)
        self.meta = {
            "schema_version": SCHEMA_VERSION,
            "columns": columns(),
            "run_id": self.run_id,
            "started_at": _now(),
            "finished_at": None,
            "complete": False,
            **meta,
        }
        self._write_meta()
        self._file = open(self.path / _RESULTS, "a", encoding="utf-8")  # noqa: SIM115
        (self.root / _LATEST).write_text(self.run_id + "\n", encoding="utf-8")
        self.counts: Counter[str] = Counter()

    @classmethod
    def reopen(cls, run: Run) -> RunWriter:
        """Append to a stored run (``cnnbench run --resume``): its meta says complete: false until closed again,
        and a last row cut short by a kill is cut off, so the next row starts on a line of its own."""
        self = cls.__new__(cls)
        self.path, self.run_id = run.path, run.run_id
        self.root = run.path.parent.parent
        results = self.path / _RESULTS
        data = results.read_bytes() if results.exists() else b""
        if data and not data.endswith(b"\n"):
            with open(results, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
        self.meta = {**run.meta, "complete": False, "finished_at": None}
        self.meta["resumed_at"] = [*self.meta.get("resumed_at", []), _now()]
        self._write_meta()
        self._file = open(results, "a", encoding="utf-8")  # noqa: SIM115
        if run.path.parent.name == "runs":
            (self.root / _LATEST).write_text(self.run_id + "\n", encoding="utf-8")
        self.counts = count_statuses(run.results)
        return self

    def append(self, result: Result) -> None:
        """Store one row now (flushed to the OS, so it survives the process being killed)."""
        self._file.write(json.dumps(result.to_json(), allow_nan=True) + "\n")
        self._file.flush()
        self.counts[result.status] += 1

    def close(self, *, complete: bool) -> None:
        """Finish the run: counts, end time and whether every selected variant ran."""
        self._file.close()
        self.meta.update(finished_at=_now(), complete=complete, counts=dict(self.counts))
        self._write_meta()

    def _write_meta(self) -> None:
        tmp = self.path / (_META + ".tmp")
        tmp.write_text(json.dumps(self.meta, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.path / _META)


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

    @property
    def run_id(self) -> str:
        """The run's id."""
        return str(self.meta.get("run_id", self.path.name))

    @property
    def complete(self) -> bool:
        """Whether the run finished every variant it selected."""
        return bool(self.meta.get("complete"))


def latest_run(root: str | os.PathLike[str]) -> Path:
    """The directory of the most recent run under root."""
    root = Path(root)
    pointer = root / _LATEST
    if pointer.exists():
        candidate = root / "runs" / pointer.read_text(encoding="utf-8").strip()
        if candidate.is_dir():
            return candidate
    runs = sorted(p for p in (root / "runs").glob("*") if p.is_dir()) if (root / "runs").is_dir() else []
    if not runs:
        raise UsageError(f"no stored run under {root}/runs; run `cnnbench run cases/` first")
    return runs[-1]


def resolve_run(spec: str | None, root: str | os.PathLike[str]) -> Path:
    """A run directory from a path (a run's, or a reports folder's for its latest), a run id under root, or None
    for the latest."""
    if spec is None:
        return latest_run(root)
    p = Path(spec)
    if p.is_dir():
        # A reports folder (runs/ and latest inside) stands for its latest run.
        if not (p / _META).exists() and not (p / _RESULTS).exists() and (p / "runs").is_dir():
            return latest_run(p)
        return p
    if p.name in (_RESULTS, _META) and p.parent.is_dir():
        return p.parent
    candidate = Path(root) / "runs" / spec
    if candidate.is_dir():
        return candidate
    raise UsageError(f"no stored run {spec!r} (neither a directory nor a run id under {root}/runs)")


def load_run(spec: str | None = None, root: str | os.PathLike[str] = "reports") -> Run:
    """Load a stored run, migrating older schemas; rows cut short by a kill are dropped and counted."""
    path = resolve_run(spec, root)
    meta_path = path / _META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    except json.JSONDecodeError as exc:
        raise UsageError(f"{meta_path}: not valid JSON ({exc})") from None
    # Runs written before the header existed have none: they are version 0.
    version = meta.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise UsageError(
            f"{meta_path}: schema_version {version!r} is not a schema version (a whole number >= 0)"
        )
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"{path}: schema_version {version} is newer than this cnnbench understands ({SCHEMA_VERSION}); "
            "upgrade cnnbench to read it"
        )
    results: list[Result] = []
    dropped = 0
    results_path = path / _RESULTS
    if results_path.exists():
        with open(results_path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    results.append(Result.from_json(migrate(json.loads(line), version)))
                except (json.JSONDecodeError, TypeError, AttributeError):
                    dropped += 1
    meta.setdefault("run_id", path.name)
    if version != SCHEMA_VERSION:
        meta.update(migrated_from=version, schema_version=SCHEMA_VERSION, columns=columns())
    return Run(path=path, meta=meta, results=results, dropped_lines=dropped)


def save_run(run: Run, path: str | os.PathLike[str]) -> Path:
    """Write a whole run (meta.json and results.jsonl, current schema) into the directory path, which must not
    exist yet or be empty; used to store merged shards and synthetic runs."""
    out = Path(path)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty; choose a new directory")
    out.mkdir(parents=True, exist_ok=True)
    meta = {**run.meta, "schema_version": SCHEMA_VERSION, "columns": columns()}
    meta.setdefault("counts", dict(count_statuses(run.results)))
    with open(out / _RESULTS, "w", encoding="utf-8") as f:
        for result in run.results:
            f.write(json.dumps(result.to_json(), allow_nan=True) + "\n")
    (out / _META).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    return out

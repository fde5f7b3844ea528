"""Result rows: the columns of a stored row, its statuses, and migrations of older rows to the current schema."""

from __future__ import annotations

import functools
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "FAILING",
    "SCHEMA_VERSION",
    "STATUSES",
    "Result",
    "columns",
    "count_statuses",
    "migrate",
    "nothing_ran",
    "summary_line",
]

#: Bumped whenever a column is added, changes meaning or disappears; loading an older run migrates it
#: through _MIGRATIONS, one version at a time.
SCHEMA_VERSION = 3
#: Every status a result can have, in the order the summary line lists them.
STATUSES = ("passed", "failed", "error", "skipped", "xfail", "xpass", "mistrusted")
#: Statuses that make a run (and the CLI) fail.
FAILING = frozenset({"failed", "error"})


@dataclass(slots=True)
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
    compute_precision: str | None = None
    """The precision the backend really computed in ("ieee", "tf32", ...); None where not recorded."""
    budget_used: float | None = None
    """max |got - expected| / (atol + rtol * |expected|) over the checked elements (a pass is <= 1)."""
    ulps_max: float | None = None
    """The largest error in units of the compute precision's unit roundoff at each element's magnitude."""
    ulps_p99: float | None = None
    """The 99th percentile of the same per-element error in ulps."""
    warnings: list[str] = field(default_factory=list)
    """Warnings raised while the variant ran ("Category: message"), captured instead of printed."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every column, in column order (the row's own lists and dicts, not copies:
        dataclasses.asdict deep-copied them, the largest per-row cost of storing a run)."""
        return {name: getattr(self, name) for name in _column_order()}

    def summary_row(self) -> Result:
        """What a run's summary keeps of this row once it is stored: a passed check without warnings only
        counts, in its (target, device, dtype) cell and its budget heatmap cell, so it keeps its identity, status,
        source, budget used, max error and compute precision and lets the rest go (about 0.6 KB instead of 1.4:
        a million stored rows must not all stay in memory whole). Any other row is kept whole: failures, skips,
        benchmarks and warnings are listed one by one. The terminal and markdown reports of summary rows are
        those of the full rows."""
        if self.status != "passed" or self.kind != "check" or self.warnings:
            return self
        row = Result(
            self.variant_id, self.case_id, self.file, self.line, self.target, self.device, self.dtype, ""
        )
        row.status, row.source, row.compute_precision = "passed", self.source, self.compute_precision
        row.budget_used, row.max_abs_err = self.budget_used, self.max_abs_err
        return row

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        """Build from a stored row; unknown keys are ignored, missing ones take their defaults.

        The few values most rows share (file, target, device, dtype, status, kind) are interned, so a run of a
        million rows holds one copy of each instead of a million.
        """
        order = _column_order()
        if tuple(data) == order:
            # A row this schema wrote (every column, in column order): built positionally, which is about twice
            # as fast as by keyword; what loading a stored run of many rows mostly costs.
            values = list(data.values())
            for i in _shared_positions():
                value = values[i]
                if type(value) is str:
                    values[i] = sys.intern(value)
            return cls(*values)
        known = _field_names()
        row = data if data.keys() <= known else {k: v for k, v in data.items() if k in known}
        for name in _SHARED:
            value = row.get(name)
            if type(value) is str:
                row[name] = sys.intern(value)
        return cls(**row)


#: Columns whose values repeat over the rows of a run.
_SHARED = ("file", "target", "device", "dtype", "status", "kind", "source", "reason", "compute_precision")


@functools.cache
def _field_names() -> frozenset[str]:
    return frozenset(f.name for f in fields(Result))


@functools.cache
def _column_order() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Result))


@functools.cache
def _shared_positions() -> tuple[int, ...]:
    order = _column_order()
    return tuple(order.index(name) for name in _SHARED)


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


def _migrate_2_to_3(row: dict[str, Any]) -> None:
    """Version 3 added compute_precision, budget_used, ulps_max, ulps_p99 and warnings; older rows did not record
    them (None: shown as "not recorded")."""
    for name in ("compute_precision", "budget_used", "ulps_max", "ulps_p99"):
        row.setdefault(name, None)
    row.setdefault("warnings", [])


#: version N -> the function that turns a row of version N into one of version N + 1, in place.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], None]] = {
    0: _migrate_0_to_1,
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
}


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


def nothing_ran(results: Iterable[Result]) -> bool:
    """True when no row ran: none at all, or every one skipped (an xfail ran; a skip did not)."""
    return all(r.status == "skipped" for r in results)


def summary_line(counts: Counter[str]) -> str:
    """'3 passed, 1 failed, 0 skipped' plus any other status that occurred."""
    parts = [f"{counts.get('passed', 0)} passed", f"{counts.get('failed', 0)} failed"]
    parts.extend(f"{counts[s]} {s}" for s in STATUSES[2:] if counts.get(s) and s != "skipped")
    parts.append(f"{counts.get('skipped', 0)} skipped")
    return ", ".join(parts)

"""Split variants across machines or CI jobs by a stable hash, and merge the shards' runs into one."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cnnbench.errors import UsageError
from cnnbench.store.result import Result
from cnnbench.store.run import Run, RunStore

__all__ = ["Shard", "merge_runs", "parse_shard", "shard_of", "take_shard"]

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

_T = TypeVar("_T")


@dataclass(frozen=True)
class Shard:
    """Shard index of count, 1-based: ``--shard 2/4`` is the second of four."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """'K/N' with 1 <= K <= N."""
    m = _SHARD_RE.match(text)
    if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UsageError(f"--shard {text!r}: expected K/N with 1 <= K <= N, e.g. 1/4")
    return Shard(int(m.group(1)), int(m.group(2)))


def shard_of(variant_id: str, count: int) -> int:
    """The 1-based shard a variant id belongs to among count shards.

    A hash of the id alone (not its position): adding or removing a case moves no other variant, and a
    cryptographic hash spreads similar ids evenly (Python's hash() is salted per process, so it would not do).
    """
    digest = hashlib.sha256(variant_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def take_shard(items: Iterable[_T], shard: Shard, key: Any = None) -> list[_T]:
    """The items of this shard, in their original order; key(item) gives the id (default: item.id)."""
    get = key or (lambda item: item.id)
    return [item for item in items if shard_of(get(item), shard.count) == shard.index]


def merge_runs(runs: Sequence[Run], output: str | os.PathLike[str], *, shards: int | None = None) -> Path:
    """Write one run combining the shards' rows into the directory output; return its path.

    The environment comes from the first run. Every run must have used the same case files; a variant stored
    by two runs is an error. The merged run is complete only if every shard was, and every shard is there
    (shards: the split's count when it is known, e.g. by ``cnnbench submit``, so that even a split whose last
    shards never came back names them). Its meta names the missing shards (``missing_shards``); ``cnnbench run
    --resume`` of the merged run runs exactly the variants they would have.
    """
    if not runs:
        raise UsageError("merge: give at least one run")
    first = runs[0]
    wanted = first.meta.get("case_files_hash")
    for run in runs[1:]:
        got = run.meta.get("case_files_hash")
        if got != wanted:
            raise UsageError(
                f"merge: {run.run_id} ran other case files than {first.run_id} (case_files_hash {got} vs {wanted})"
            )
    missing = _missing_shards([run.meta.get("shard") for run in runs], shards)
    complete = all(run.complete for run in runs) and not missing
    meta: dict[str, Any] = {
        k: v
        for k, v in first.meta.items()
        if k not in ("run_id", "counts", "shard", "schema_version", "columns")
    }
    meta.update(
        run_id=Path(output).name,
        complete=complete,
        merged_from=[{"run_id": run.run_id, "shard": run.meta.get("shard")} for run in runs],
        missing_shards=missing,
        started_at=min(
            (str(r.meta.get("started_at")) for r in runs if r.meta.get("started_at")), default=None
        ),
        finished_at=max(
            (str(r.meta.get("finished_at")) for r in runs if r.meta.get("finished_at")), default=None
        ),
    )

    def rows() -> Iterator[Result]:
        # Streamed, one row at a time (a run loaded without its rows is read from disk as it goes), with one
        # dict of ids over every run: a duplicate is found in O(1), the merge is O(rows) in time and holds only
        # the ids in memory.
        seen: dict[str, str] = {}
        counts: Counter[str] = Counter()
        selected = 0
        for run in runs:
            stored = 0
            for result in run.iter_rows():
                if result.variant_id in seen:
                    raise UsageError(
                        f"merge: {result.variant_id} is in both {seen[result.variant_id]} and {run.run_id}; "
                        "were the same shard's runs given twice?"
                    )
                seen[result.variant_id] = run.run_id
                counts[result.status] += 1
                stored += 1
                yield result
            selected += int(run.meta.get("variants_selected") or stored)
        meta.update(variants_selected=selected, counts=dict(counts))

    out = Path(output)
    existed = out.exists()
    try:
        return RunStore.save(Run(path=out, meta=meta, results=[]), out, rows=rows())
    except UsageError:
        # A duplicate found half-way (save refuses a directory that is not empty before writing anything): no
        # half-written merge is left behind.
        if not (out / "meta.json").exists():
            if existed:
                (out / "results.jsonl").unlink(missing_ok=True)
            else:
                shutil.rmtree(out, ignore_errors=True)
        raise


def _missing_shards(shards: Sequence[Any], expected: int | None = None) -> list[str]:
    """Shards of an N-way split not among those given (none when the runs were not sharded)."""
    parsed = [parse_shard(s) for s in shards if isinstance(s, str)]
    counts = {s.count for s in parsed} | ({expected} if expected is not None else set())
    if len(counts) > 1:
        raise UsageError(f"merge: the runs are shards of different splits ({', '.join(map(str, parsed))})")
    if not counts:
        return []
    (count,) = counts
    have = {s.index for s in parsed}
    return [str(Shard(i, count)) for i in range(1, count + 1) if i not in have]

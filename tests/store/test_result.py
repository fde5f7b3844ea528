"""Stored runs: rows appended per variant, loading, cut-short rows, schema versions (cnnbench.store.result)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cnnbench.errors import UsageError
from cnnbench.store.result import SCHEMA_VERSION, Result, columns, summary_line
from cnnbench.store.run import RunStore


def row(i: int, status: str = "passed") -> Result:
    return Result(f"c{i}[cpu-float32]", f"c{i}", "f.yaml", i, "relu", "cpu", "float32", status)


def test_rows_are_on_disk_before_close(tmp_path: Path) -> None:
    writer = RunStore(tmp_path).create({"paths": ["x"]})
    writer.append(row(1))
    writer.append(row(2, "failed"))
    # a reader sees both rows while the run is still open, and the run is marked incomplete
    run = RunStore(tmp_path).load(None)
    assert [r.case_id for r in run.results] == ["c1", "c2"]
    assert not run.complete
    writer.close(complete=True)
    run = RunStore(tmp_path).load(writer.run_id)
    assert run.complete
    assert run.meta["counts"] == {"passed": 1, "failed": 1}
    assert run.meta["schema_version"] == SCHEMA_VERSION
    assert run.meta["columns"] == columns()


def test_latest_and_explicit_paths(tmp_path: Path) -> None:
    first = RunStore(tmp_path).create({}, run_id="20260101-000000-aaaaaa")
    first.close(complete=True)
    second = RunStore(tmp_path).create({}, run_id="20260102-000000-bbbbbb")
    second.close(complete=True)
    assert RunStore(tmp_path).load(None).run_id == "20260102-000000-bbbbbb"
    assert RunStore(tmp_path).load(str(first.path)).run_id == "20260101-000000-aaaaaa"
    with pytest.raises(UsageError, match="no stored run 'nope'"):
        RunStore(tmp_path).load("nope")
    with pytest.raises(UsageError, match="no stored run under"):
        RunStore(tmp_path / "empty").load(None)


def test_cut_short_last_line_is_dropped_and_counted(tmp_path: Path) -> None:
    writer = RunStore(tmp_path).create({})
    writer.append(row(1))
    writer.close(complete=False)
    with open(writer.path / "results.jsonl", "a", encoding="utf-8") as f:
        f.write('{"variant_id": "c2[cpu')
    run = RunStore(tmp_path).load(None)
    assert len(run.results) == 1 and run.dropped_lines == 1


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    writer = RunStore(tmp_path).create({})
    writer.close(complete=True)
    meta = json.loads((writer.path / "meta.json").read_text())
    meta["schema_version"] = SCHEMA_VERSION + 1
    (writer.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="newer than this cnnbench understands"):
        RunStore(tmp_path).load(None)


def test_result_round_trip_ignores_unknown_columns() -> None:
    r = row(3, "failed")
    r.examples = [{"index": [0], "expected": 1.0, "got": 2.0}]
    data = r.to_json() | {"from_the_future": 1}
    assert Result.from_json(data) == r


def test_summary_line() -> None:
    assert summary_line(Counter(passed=3, failed=1)) == "3 passed, 1 failed, 0 skipped"
    assert summary_line(Counter(passed=1, error=2, skipped=4, xfail=1)) == (
        "1 passed, 0 failed, 2 error, 1 xfail, 4 skipped"
    )


def test_rows_are_small_and_share_their_repeated_values() -> None:
    """A million stored rows must fit in memory: no per-row __dict__, one copy of each file, device, status..."""
    import json

    from cnnbench.store.result import Result

    rows = [
        Result.from_json(json.loads(json.dumps(Result(f"c{i}[cpu-float32]", f"c{i}", "cases/x.yaml", i, "conv2d",
                                                      "cpu", "float32", "passed").to_json())))
        for i in range(2)
    ]  # fmt: skip
    assert not hasattr(rows[0], "__dict__")
    for name in ("file", "target", "device", "dtype", "status", "kind"):
        assert getattr(rows[0], name) is getattr(rows[1], name), name
    assert Result.from_json({**rows[0].to_json(), "unknown_column": 1}) == rows[0]


def test_rows_in_column_order_and_out_of_it_load_alike() -> None:
    """A row this schema wrote is built positionally (the fast path); the same values reordered, with a column
    missing or with an unknown one, take the keyword path: every way gives the same Result."""
    r = row(7, "failed")
    r.metrics = {"median_s": 0.5}
    r.warnings = ["UserWarning: x"]
    data = r.to_json()
    assert list(data) == columns()
    fast = Result.from_json(json.loads(json.dumps(data)))
    assert fast == r
    reordered = dict(reversed(list(data.items())))
    assert Result.from_json(reordered) == r
    missing = {k: v for k, v in data.items() if k != "warnings"}
    assert Result.from_json(missing) == Result(**{**missing, "warnings": []})
    for name in ("file", "device", "status"):  # interned on both paths
        assert getattr(fast, name) is getattr(Result.from_json(reordered), name)


def test_load_restores_the_collector_and_drops_torn_rows(tmp_path: Path) -> None:
    """The collector is paused while rows are built and running again afterwards, a torn row in between."""
    import gc

    writer = RunStore(tmp_path).create({})
    for i in range(3):
        writer.append(row(i))
    writer.close(complete=True)
    results = writer.path / "results.jsonl"
    lines = results.read_text().splitlines()
    results.write_text("\n".join([lines[0], lines[1][:30], lines[2]]) + "\n")
    assert gc.isenabled()
    run = RunStore(tmp_path).load(None)
    assert gc.isenabled()
    assert [r.variant_id for r in run.results] == ["c0[cpu-float32]", "c2[cpu-float32]"]
    assert run.dropped_lines == 1

"""JSON and CSV: every row with the stored columns, nested values as JSON, "complete" at the top."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from synthetic_runs import check_row, make_run

from cnnbench.report.data import render_csv, render_json
from cnnbench.store.result import columns
from cnnbench.store.run import Run


def test_json_has_the_meta_and_every_row(run: Run, tmp_path: Path) -> None:
    data = json.loads(render_json(run))
    assert data["complete"] is True and data["meta"]["run_id"] == "run-1"
    assert len(data["results"]) == 11 and list(data["results"][0]) == columns()
    stopped = make_run(tmp_path / "r", [check_row("conv")], complete=False)
    assert json.loads(render_json(stopped))["complete"] is False


def test_csv_has_the_stored_columns_and_nested_values_as_json(run: Run) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(run))))
    assert len(rows) == 11 and list(rows[0]) == columns()
    bench = next(r for r in rows if r["kind"] == "bench")
    assert json.loads(bench["metrics"])["median_ms"] > 0


def test_json_and_csv_carry_budget_and_ulps(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [check_row("conv", budget_used=0.25, ulps_max=3.0, ulps_p99=1.5)])
    (row,) = json.loads(render_json(run))["results"]
    assert (row["budget_used"], row["ulps_max"], row["ulps_p99"]) == (0.25, 3.0, 1.5)
    (line,) = csv.DictReader(io.StringIO(render_csv(run)))
    assert (line["budget_used"], line["ulps_max"], line["ulps_p99"]) == ("0.25", "3.0", "1.5")

"""The numerics ledger (cnnbench.report.ledger, cnnbench ledger): budget used per target x dtype x device over
stored runs grouped by environment, as markdown and HTML, with numbers that match the rows."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_runs import check_row, drifted_row, make_run

from cnnbench.cli import main
from cnnbench.report.ledger import (
    budget_cells,
    build_ledger,
    cell_text,
    environment_label,
    render_ledger_html,
    render_ledger_markdown,
)
from cnnbench.store.result import Result
from cnnbench.store.run import Run


def _gate_runs(reports: Path) -> tuple[Run, Run]:
    """Two runs as the gate stores them: the same cases under torch 2.14.1 and 2.13.0; conv drifts 2 -> 6 ulps."""

    def rows(k: int) -> list[Result]:
        return [
            drifted_row("conv-a", 2),
            drifted_row("conv-b", k),
            drifted_row("conv-a", 1, "float16"),
            drifted_row("pool", 1, target="max_pool2d"),
            check_row("pool-bad", target="max_pool2d", status="failed", budget_used=7.5, mismatches=2),
            check_row("pool-x", target="max_pool2d", status="xfail", budget_used=3.0, reason="known"),
        ]

    new = make_run(reports / "gate-2.14.1", rows(2), started_at="2026-01-02T00:00:00Z")
    old = make_run(
        reports / "gate-2.13.0", rows(6), {"torch_version": "2.13.0"}, started_at="2026-01-01T00:00:00Z"
    )
    return old, new


def test_ledger_cells_match_the_rows(tmp_path: Path) -> None:
    old, new = _gate_runs(tmp_path)
    ledger = build_ledger([new, old])
    assert [c.run_id for c in ledger.columns] == ["gate-2.13.0", "gate-2.14.1"]  # by start time
    assert [label for label, _ in ledger.groups()] == [environment_label(old), environment_label(new)]
    assert "torch 2.13.0" in environment_label(old) and "Synthetic CPU" in environment_label(old)
    assert "precision not recorded" in environment_label(old)
    for run in (old, new):
        conv = [r.budget_used for r in run.results if r.target == "conv2d" and r.dtype == "float32"]
        cell = ledger.cell(("conv2d", "float32", "cpu"), run.run_id)
        assert cell is not None and cell.p50 == statistics.median(conv) and cell.max == max(conv)  # type: ignore[type-var]
        pool = ledger.cell(("max_pool2d", "float32", "cpu"), run.run_id)
        passing = next(r for r in run.results if r.case_id == "pool")
        # the failure and the xfail are counted beside the cell, never as its worst passing error
        assert (
            pool is not None and pool.max == passing.budget_used and pool.counts == {"failed": 1, "xfail": 1}
        )
    assert ledger.rows == [
        ("conv2d", "float32", "cpu"),
        ("conv2d", "float16", "cpu"),
        ("max_pool2d", "float32", "cpu"),
    ]


def test_ledger_markdown_shows_the_numbers_and_marks_the_cell_that_moved(tmp_path: Path) -> None:
    old, new = _gate_runs(tmp_path)
    text = render_ledger_markdown(build_ledger([old, new]))
    conv_old = ledger_cell(old, "conv2d", "float32")
    conv_new = ledger_cell(new, "conv2d", "float32")
    line = next(x for x in text.splitlines() if x.startswith("| conv2d | float32 | cpu |"))
    factor = max(conv_new) / max(conv_old)
    assert line == (
        f"| conv2d | float32 | cpu | {statistics.median(conv_old):.3g} / {max(conv_old):.3g} "
        f"| {statistics.median(conv_new):.3g} / {max(conv_new):.3g} ▼{factor:.3g}x |"
    )
    assert abs(factor - 1 / 3) < 1e-9  # conv-b went from 6 ulps to 2
    half = next(x for x in text.splitlines() if x.startswith("| conv2d | float16 | cpu |"))
    assert "▲" not in half and "▼" not in half  # unchanged
    pool = next(x for x in text.splitlines() if x.startswith("| max_pool2d | float32 | cpu |"))
    assert pool.count("❌ 1") == 2 and pool.count("xfail 1") == 2
    assert "**env 1**: torch 2.13.0" in text and "**env 2**: torch 2.14.1" in text


def ledger_cell(run: Run, target: str, dtype: str) -> list[float]:
    return [
        r.budget_used
        for r in run.results
        if r.target == target and r.dtype == dtype and r.budget_used is not None
    ]


def test_ledger_html_groups_columns_by_environment(tmp_path: Path) -> None:
    old, new = _gate_runs(tmp_path)
    again = make_run(tmp_path / "again", new.results, started_at="2026-01-03T00:00:00Z", complete=False)
    page = render_ledger_html(build_ledger([old, new, again]))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert '<th colspan="1">torch 2.13.0' in page and '<th colspan="2">torch 2.14.1' in page
    assert '<td class="moved"' in page and "<code>gate-2.14.1</code>" in page
    assert "<code>again (incomplete)</code>" in page


def test_not_recorded_and_unmeasured_rows(tmp_path: Path) -> None:
    rows = [
        check_row("v2-row", budget_used=None, ulps_max=None, ulps_p99=None),
        check_row("shape-only", target="flatten", budget_used=None, max_abs_err=None),
        check_row("skipped", target="relu", status="skipped", budget_used=None, max_abs_err=None),
    ]
    cells = budget_cells(rows, lambda r: (r.target,))
    assert list(cells) == [("conv2d",)] and cell_text(cells[("conv2d",)]) == "not recorded"


def test_ledger_cli_defaults_to_every_stored_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _gate_runs(tmp_path / "reports")
    assert main(["ledger", "--reports", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    assert "`gate-2.13.0`" in out and "`gate-2.14.1`" in out
    html_file = tmp_path / "ledger.html"
    assert (
        main(["ledger", str(tmp_path / "reports" / "gate-2.14.1"), "--format", "html", "-o", str(html_file)])
        == 0
    )
    assert "gate-2.13.0" not in html_file.read_text() and "gate-2.14.1" in html_file.read_text()
    assert main(["ledger", "--reports", str(tmp_path / "empty")]) == 2
    assert "no reports folder" in capsys.readouterr().err


def test_ledger_cli_end_to_end(tmp_path: Path) -> None:
    # as gate/run writes it: the ledger of the gate's two runs into reports/
    old, new = _gate_runs(tmp_path / "reports")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnbench",
            "ledger",
            str(old.path),
            str(new.path),
            "-o",
            "reports/gate-ledger.md",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| conv2d | float32 | cpu |" in (tmp_path / "reports" / "gate-ledger.md").read_text()

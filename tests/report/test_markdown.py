"""Markdown: a run's benchmark table, failures with repros, skipped rows by reason; the comparison's tables."""

from __future__ import annotations

from pathlib import Path

from repo import REPO
from synthetic_runs import bench_row, check_row, make_run, replicates

from cnnbench.report.diff import compare_runs
from cnnbench.report.markdown import render_comparison_markdown, render_markdown
from cnnbench.report.tables import MAX_LISTED, bench_table
from cnnbench.store.result import Result
from cnnbench.store.run import Run


def test_markdown_has_a_benchmark_table(run: Run) -> None:
    text = render_markdown(run)
    assert "## Benchmarks" in text
    assert (
        "| variant | samples/s | median ms | IQR ms | GFLOP/s | GB/s | bound | % of bound | noise |" in text
    )
    line = next(x for x in text.splitlines() if x.startswith("| bench-resnet18-b8[cpu-bfloat16]"))
    assert "⚠️ noisy" in line
    assert "## Failures" in text and "cnnbench run cases/sub/b.yaml -k 'pool[cpu-float32]'" in text


def test_markdown_without_bench_rows_has_no_benchmark_section(tmp_path: Path) -> None:
    text = render_markdown(make_run(tmp_path / "r", [check_row("conv")]))
    assert "Benchmarks" not in text
    assert bench_table([check_row("conv")]).empty


def test_markdown_lists_failures_up_to_the_limit_and_counts_the_rest(tmp_path: Path) -> None:
    rows = [check_row(f"c{i}", status="failed", message=f"m{i}") for i in range(MAX_LISTED + 3)]
    text = render_markdown(make_run(tmp_path / "r", rows))
    assert text.count("### ❌") == MAX_LISTED
    assert "... and 3 more failures." in text
    assert (
        "Repro: `cnnbench run cases/synthetic.yaml -k 'c0[cpu-float32]'` · as a plain torch script:" in text
    )


def test_markdown_groups_skips_by_reason_and_keeps_pipes_inside_their_cell(tmp_path: Path) -> None:
    rows = [
        check_row("a", status="skipped", reason="no | CUDA", max_abs_err=None),
        check_row("b", status="skipped", reason="no | CUDA", max_abs_err=None),
    ]
    text = render_markdown(make_run(tmp_path / "r", rows, env={"cuda_version": "12.1"}))
    assert "| status | variants | reason |\n|---|---:|---|\n| skipped | 2 | no \\| CUDA |" in text
    assert "2 threads · devices: cpu · CUDA 12.1" in text


def test_comparison_markdown_cuts_long_lists(tmp_path: Path) -> None:
    ids = range(MAX_LISTED + 2)
    base = make_run(tmp_path / "a", [check_row(f"c{i}") for i in ids])
    new = make_run(tmp_path / "b", [check_row(f"c{i}", status="failed", message="x|y") for i in ids])
    text = render_comparison_markdown(compare_runs(base, new))
    assert "## Regressions (52)\n\n| variant | change | detail |\n|---|---|---|\n" in text
    assert "| `c0[cpu-float32]` | status | passed -> failed: x\\|y |" in text
    assert "\n... and 2 more\n" in text


def test_comparison_markdown_of_a_perf_change(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [bench_row("resnet18", replicates(40.0, seed=1))])
    new = make_run(tmp_path / "b", [bench_row("resnet18", replicates(52.0, seed=2))])
    text = render_comparison_markdown(compare_runs(base, new))
    assert text.startswith("# cnnbench compare `a` → `b`: ❌ regressions found")
    assert (
        "**1 regressions, 0 improvements, 0 allowed differences, 0 not comparable, 1 variants compared**"
        in text
    )
    assert "| `bench-resnet18-b8[cpu-float32]` | perf | median 40 ms -> " in text


def _heatmap_rows() -> list[Result]:
    """conv2d float32: passes at 0.2 and 0.4 of the budget, one failure far over it; lp_pool2d: an xfail within
    tolerance (the case that used to paint itself the worst) and nothing else; a migrated row."""
    return [
        check_row("conv-a", budget_used=0.2),
        check_row("conv-b", budget_used=0.4),
        check_row("conv-c", status="failed", budget_used=40.0, mismatches=3, max_abs_err=0.5),
        check_row("conv-d", "float64", budget_used=0.9),
        check_row("lp", target="lp_pool2d", status="xfail", budget_used=0.95, reason="known"),
        check_row("old", target="relu", budget_used=None),
    ]


def test_markdown_heatmap_shows_budget_used_with_failures_and_xfails_apart(tmp_path: Path) -> None:
    text = render_markdown(make_run(tmp_path / "r", _heatmap_rows()))
    section = text.split("## Budget used by op and dtype", 1)[1].split("\n## ", 1)[0]
    lines = [x for x in section.splitlines() if x.startswith("| ")]
    assert lines[0] == "| target | float64 | float32 |"
    assert (
        "| conv2d | 🟥 0.9 | 🟨 0.4 · ❌ 1 |" in lines
    )  # the failure is counted, not the worst passing error
    assert "| lp_pool2d |  | xfail 1 |" in lines  # an xfail never paints the cell
    assert "| relu |  | not recorded |" in lines


def test_summary_rows_render_the_same_markdown_and_terminal_report(tmp_path: Path) -> None:
    """`cnnbench report` reads passed checks as summary rows for the markdown and terminal views (a third of the
    memory): the reports are those of the full rows, heatmap and precision notes included."""
    import io

    from cnnbench.cli import main
    from cnnbench.report.console import make_console, print_console
    from cnnbench.report.markdown import render_markdown
    from cnnbench.store.run import RunStore

    assert main(["run", str(REPO / "cases" / "seeds"), "--reports", str(tmp_path), "--device", "cpu"]) in (
        0,
        1,
    )
    store = RunStore(tmp_path)
    full, summary = store.load(None), store.load(None, summary=True)
    assert any(r.status == "passed" and r.budget_used is not None for r in full.results)
    assert sum(r.output_digest is None for r in summary.results) > sum(
        r.output_digest is None for r in full.results
    )
    assert render_markdown(summary) == render_markdown(full)
    views = []
    for run in (full, summary):
        buffer = io.StringIO()
        print_console(run, make_console(file=buffer), verbose=True)
        views.append(buffer.getvalue())
    assert views[0] == views[1]

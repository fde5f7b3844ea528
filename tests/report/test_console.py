"""The terminal view: a run's status and benchmark tables, failures with repros, the totals line; a comparison."""

from __future__ import annotations

import dataclasses
import io
import itertools
from pathlib import Path

from rich.console import Console
from synthetic_runs import bench_row, check_row, make_run, replicates

from cnnbench.cli import main
from cnnbench.report.console import print_comparison, print_console
from cnnbench.report.diff import compare_runs
from cnnbench.report.tables import MAX_LISTED
from cnnbench.store.run import Run


def _text(draw: object, *args: object, **kw: object) -> str:
    console = Console(file=io.StringIO(), width=160, highlight=False)
    draw(*args, console, **kw)  # type: ignore[operator]
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def test_console_shows_tables_failures_and_totals(run: Run) -> None:
    text = _text(print_console, run)
    assert "cnnbench run run-1" in text and "benchmarks" in text and "noisy" in text
    assert "FAILED pool[cpu-float32]  cases/sub/b.yaml:12" in text
    assert "repro: cnnbench run cases/sub/b.yaml -k 'pool[cpu-float32]'" in text
    assert "no CUDA" not in text  # reasons only in the verbose view
    assert "XPASS tanh[cpu-float32]" in text
    assert text.rstrip().splitlines()[-1] == "6 passed, 1 failed, 1 error, 1 xfail, 1 xpass, 1 skipped"


def test_verbose_console_gives_the_reasons(run: Run, tmp_path: Path) -> None:
    text = _text(print_console, run, verbose=True)
    assert "skipped relu[cpu-float32]: no CUDA" in text and "xfail relu[cpu-int64]: no int kernel" in text
    incomplete = make_run(tmp_path / "r", [check_row("conv")], complete=False)
    assert _text(print_console, incomplete).rstrip().endswith("(incomplete)")


def test_comparison_in_the_terminal(tmp_path: Path) -> None:
    ids = range(MAX_LISTED + 1)
    base = make_run(tmp_path / "a", [check_row(f"c{i}") for i in ids])
    new = make_run(tmp_path / "b", [check_row(f"c{i}", status="failed") for i in ids], complete=False)
    text = _text(print_comparison, compare_runs(base, new))
    assert text.startswith("warning: the new run b is incomplete")
    assert "Regressions (51)" in text and "  c0[cpu-float32] status passed -> failed" in text
    assert "  ... and 1 more" in text
    assert text.rstrip().endswith(
        "51 regressions, 0 improvements, 0 allowed differences, 0 not comparable, 51 variants compared"
    )


def test_terminal_output_to_a_file(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [check_row("conv")])
    new = make_run(tmp_path / "b", [check_row("conv", status="error", message="RuntimeError: boom")])
    assert main(["compare", str(base.path), str(new.path), "-o", str(tmp_path / "out.txt")]) == 1
    text = (tmp_path / "out.txt").read_text()
    assert "Regressions (1)" in text and "passed -> error: RuntimeError: boom" in text


def test_benchmark_rows_fit_80_columns_with_id_axes_and_figures_apart(tmp_path: Path) -> None:
    rows = []
    for name in ("resnet50.res2a_branch2b", "mobilenet_v3_large", "lenet"):
        for axes in ("b8-inference-contiguous", "b64-train-channels_last"):
            r = bench_row(name, replicates(40.0, seed=1))
            rows.append(dataclasses.replace(r, variant_id=f"{name}[cpu-float32-{axes}]"))
    console = Console(file=io.StringIO(), width=80, highlight=False)
    print_console(make_run(tmp_path / "r", rows), console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "benchmarks · cpu float32" in text  # the axes every row shares, said once
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    row = next(line for line in lines if line.lstrip().startswith("mobilenet_v3_large"))
    assert row.split()[:4] == ["mobilenet_v3_large", "b8", "inference", "contiguous"]
    assert row.split()[4] == "40"  # the median, in its own column on the same line
    # Each row takes two lines at most, even the longest name at 80 columns.
    starts = [
        i for i, line in enumerate(lines) if line.lstrip().startswith(("resnet50", "mobilenet", "lenet"))
    ]
    assert len(starts) == 6 and all(b - a <= 2 for a, b in itertools.pairwise(starts))


def test_absent_devices_collapse_into_one_line_and_the_legend_names_the_marks(tmp_path: Path) -> None:
    absent = "device cuda is not available"
    rows = [check_row("conv"), check_row("known", status="xfail", reason="upstream bug")]
    rows += [
        dataclasses.replace(check_row(f"c{i}", status="skipped", reason=absent), device="cuda")
        for i in range(1200)
    ]
    text = _text(print_console, make_run(tmp_path / "r", rows), verbose=True)
    assert "cuda: not available, 1,200 variants skipped" in text
    assert "│ cuda" not in text and absent not in text  # no table row, no per-variant note
    assert "✅ 1 ❎ 1 xfail" in text and "legend: ✅ passed · ❎ xfail (failed, as expected)" in text


def test_a_line_number_of_100_is_not_read_as_an_emoji_code() -> None:
    """rich turned `file.yaml:100:` into `file.yaml💯` in every message about line 100 of a case file."""
    from io import StringIO

    from cnnbench.report.console import make_console

    buffer = StringIO()
    make_console(file=buffer).print("error: cases.yaml:100:5: cases[98].expect.outptu: unknown key")
    assert "cases.yaml:100:5:" in buffer.getvalue() and "💯" not in buffer.getvalue()

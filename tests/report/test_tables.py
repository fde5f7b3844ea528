"""The shared tables: status matrix cells and dtype order, the benchmark table, failures, the environment line."""

from __future__ import annotations

import dataclasses

from synthetic_runs import bench_row, check_row, replicates

from cnnbench.report.tables import (
    BENCH_COLUMNS,
    absent_devices,
    bench_display,
    bench_table,
    dtype_order,
    environment_line,
    failures,
    peaks_line,
    status_legend,
    status_matrix,
)
from cnnbench.store.run import Run


def test_status_matrix_counts_and_shows_the_worst_status(run: Run) -> None:
    matrix = status_matrix(run.results)
    assert list(matrix.columns) == ["float64", "float32", "bfloat16", "int64"]
    assert matrix.loc[("max_pool2d", "cpu"), "float32"] == "❌ 1 failed"
    assert matrix.loc[("relu", "cpu"), "int64"] == "❎ 1 xfail"
    assert matrix.loc[("tanh", "cpu"), "float32"] == "⚠️ 1 xpass"
    assert matrix.loc[("conv2d", "cpu"), "bfloat16"] == "✅ 1/1"
    assert matrix.loc[("relu", "cpu"), "float32"] == "skipped"
    assert status_matrix([bench_row("lenet", replicates(1.0))]).empty


def test_dtype_order_puts_floats_first_from_the_most_precise() -> None:
    assert dtype_order(["int8", "bfloat16", "float64", "complex64", "float32"]) == [
        "float64",
        "float32",
        "bfloat16",
        "complex64",
        "int8",
    ]


def test_bench_table_and_its_display(run: Run) -> None:
    table = bench_table(run.results)
    assert len(table) == 4 and list(table.columns)[5:] == list(BENCH_COLUMNS)
    display = bench_display(run.results)
    assert list(display["noise"]).count("⚠️ noisy") >= 1
    assert bench_display([bench_row("lenet", replicates(1.0), status="skipped")]).empty


def test_failures_are_failed_errored_and_xpassed(run: Run) -> None:
    assert [r.status for r in failures(run.results)] == ["failed", "error", "xpass"]


def test_environment_and_peaks_lines() -> None:
    meta = {"environment": {"torch_version": "2.14.1", "devices": ["cpu"], "cuda_version": "12.1"}}
    assert environment_line(meta) == "torch 2.14.1 · Python ? · ? · ? threads · devices: cpu · CUDA 12.1"
    assert environment_line({"environment": None}) == "torch ? · Python ? · ? · ? threads · devices: ?"
    assert peaks_line({}) == ""
    line = peaks_line({"peaks": {"cpu": {"float32": 18.04, "bfloat16": 0.38}}})
    assert line.startswith("GEMM probe peaks (GFLOP/s): cpu: bfloat16 0.38, float32 18")


def test_the_ceilings_line_names_each_ceiling_its_raise_and_what_is_missing() -> None:
    entries = {
        "bandwidth|cpu|t2": {"measured": 6.83, "ceiling": 6.83, "unit": "GB/s"},
        "compute|cpu|float32|ieee|t2": {
            "measured": 83.5,
            "practical": 101.2,
            "ceiling": 101.2,
            "raised_by": "conv[cpu-float32]",
            "theoretical": 333.0,
        },
        "compute|cpu|float16|ieee|t2": {"measured": None, "ceiling": None, "error": "the probe failed: OOM"},
    }
    line = peaks_line({"ceilings": {"file": "reports/machines/ab.json", "entries": entries}})
    assert line.startswith(
        "Ceilings (measured once per machine: reports/machines/ab.json): cpu bandwidth 6.83 GB/s"
    )
    assert (
        "cpu float32 101 GFLOP/s (practical: raised from 83.5 by conv[cpu-float32]), theoretical 333" in line
    )
    assert "cpu float16: missing (the probe failed: OOM)" in line


def test_the_bench_table_shows_the_bound_and_its_raise() -> None:
    from synthetic_runs import bench_row

    raised = bench_row("conv", [1.0, 1.1, 1.2], metrics={"bound": "compute", "ceiling_raised": ["compute"]})
    memory = bench_row("pool", [1.0, 1.1], metrics={"bound": "memory", "pct_of_bound": 61.25, "gbs": 12.5})
    shown = bench_display([raised, memory])
    assert list(shown["bound"]) == ["compute (raised)", "memory"]
    assert list(shown["% of bound"]) == ["42", "61.2"] and list(shown["GB/s"]) == ["1.5", "12.5"]


def test_a_cell_reads_n_of_n_only_when_all_passed_and_marks_xfail_and_xpass_apart() -> None:
    def cell(*statuses: str) -> str:
        rows = [check_row(f"c{i}", status=s) for i, s in enumerate(statuses)]
        return str(status_matrix(rows).loc[("conv2d", "cpu"), "float32"])

    assert cell("passed", "passed", "passed") == "✅ 3/3"
    assert cell("passed", "passed", "xfail") == "✅ 2 ❎ 1 xfail"
    assert cell("passed", "xpass", "xfail") == "⚠️ 1 xpass ✅ 1 ❎ 1 xfail"
    assert cell("failed", "passed", "passed", "skipped") == "❌ 1 failed ✅ 2"
    assert status_legend([check_row("a")]) == ""
    assert status_legend([check_row("a"), check_row("b", status="xfail")]) == (
        "legend: ✅ passed · ❎ xfail (failed, as expected)"
    )


def test_absent_devices_are_those_whose_every_row_was_skipped_as_not_available() -> None:
    absent = "device cuda is not available"
    rows = [
        check_row("a"),
        dataclasses.replace(check_row("a", status="skipped", reason=absent), device="cuda"),
        dataclasses.replace(check_row("b", status="skipped", reason=absent), device="cuda"),
        check_row("c", status="skipped", reason="device cpu is not available"),  # cpu ran other rows
    ]
    assert absent_devices(rows) == {"cuda": 2}

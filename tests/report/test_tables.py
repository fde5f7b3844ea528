"""The shared tables: status matrix cells and dtype order, the benchmark table, failures, the environment line."""

from __future__ import annotations

from synthetic_runs import bench_row, replicates

from cnnbench.report.tables import (
    BENCH_COLUMNS,
    bench_display,
    bench_table,
    dtype_order,
    environment_line,
    failures,
    peaks_line,
    status_matrix,
)
from cnnbench.store.run import Run


def test_status_matrix_counts_and_shows_the_worst_status(run: Run) -> None:
    matrix = status_matrix(run.results)
    assert list(matrix.columns) == ["float64", "float32", "bfloat16", "int64"]
    assert matrix.loc[("max_pool2d", "cpu"), "float32"] == "❌ 0/1"
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

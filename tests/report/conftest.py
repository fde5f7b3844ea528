"""The stored run every report test renders: checks of each status (one message XML and markdown must escape)
and benchmark rows of two models in two dtypes, one of them noisy."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_runs import bench_row, check_row, make_run, replicates

from cnnbench.store.result import Result
from cnnbench.store.run import Run


def report_rows() -> list[Result]:
    """Eleven rows: every status but mistrusted, over three case files, and four benchmark rows."""
    rows = [
        check_row("conv", "float32", target="conv2d", file="cases/a.yaml"),
        check_row("conv", "bfloat16", target="conv2d", file="cases/a.yaml", max_abs_err=0.01),
        check_row(
            "pool",
            "float32",
            status="failed",
            target="max_pool2d",
            file="cases/sub/b.yaml",
            line=12,
            mismatches=1,
            max_abs_err=0.5,
            message='output: 1 of 4 elements differ <b>&"quoted"</b>\x1b[31m\x00',
        ),
        check_row(
            "pool", "float64", status="error", target="max_pool2d", file="cases/sub/b.yaml", message="boom"
        ),
        check_row("relu", "float32", status="skipped", reason="no CUDA", target="relu", max_abs_err=None),
        check_row("relu", "int64", status="xfail", reason="no int kernel", target="relu", max_abs_err=None),
        check_row("tanh", "float32", status="xpass", target="tanh", message="expected to fail but passed"),
    ]
    for model, ms in (("resnet18", 40.0), ("lenet", 0.3)):
        rows.append(bench_row(model, replicates(ms, seed=1)))
        rows.append(bench_row(model, replicates(ms * 200, seed=2, spread=0.2), dtype="bfloat16"))
    return rows


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return make_run(tmp_path / "run-1", report_rows())

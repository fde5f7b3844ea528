"""GPU fingerprints in comparisons (cnnbench.report.diff): rows on GPUs that differ in name, clocks, power
limit, cuDNN/cuBLAS or precision flags are not compared as regressions; keys a run did not record are none."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from synthetic_runs import bench_row, make_run, replicates

from cnnbench.report.diff import compare_runs
from cnnbench.store.result import Result

GPU = {
    "device": "cuda:0",
    "name": "NVIDIA H200",
    "capability": "9.0",
    "sm_count": 132,
    "sm_clock_max_mhz": 1980,
    "power_limit_w": 700.0,
    "cudnn_version": 91002,
    "cublas_version": "13.1.1.3",
}
ENV = {"accelerators": [GPU], "cudnn_conv_fp32_precision": "tf32", "cuda_matmul_fp32_precision": "ieee"}


def gpu_row(ms: float, seed: int, **metrics: Any) -> Result:
    row = bench_row("resnet50", replicates(ms, seed=seed), metrics=metrics)
    return dataclasses.replace(row, device="cuda:0", variant_id="bench-resnet50-b8[cuda:0-float32]")


def _compare(tmp_path: Path, base_env: dict[str, Any], new_env: dict[str, Any], **new_metrics: Any) -> Any:
    base = make_run(tmp_path / "a", [gpu_row(20.0, 1)], env=base_env)
    new = make_run(tmp_path / "b", [gpu_row(40.0, 2, **new_metrics)], env=new_env)
    return compare_runs(base, new)


def test_same_gpu_slower_is_a_regression(tmp_path: Path) -> None:
    c = _compare(tmp_path, ENV, ENV)
    assert c.regressed and not c.not_comparable


def test_power_limit_clock_or_cublas_differ_means_not_compared(tmp_path: Path) -> None:
    for key, value in (("power_limit_w", 350.0), ("sm_clock_max_mhz", 1410), ("cublas_version", "12.9")):
        other = {**ENV, "accelerators": [{**GPU, key: value}]}
        c = _compare(tmp_path / key, ENV, other)
        assert not c.regressed, key
        assert f"gpu_{key}" in c.not_comparable[0].detail


def test_precision_flags_differ_means_not_compared(tmp_path: Path) -> None:
    c = _compare(tmp_path, ENV, {**ENV, "cudnn_conv_fp32_precision": "ieee"})
    assert not c.regressed and "cudnn_conv_fp32_precision: 'tf32' -> 'ieee'" in c.not_comparable[0].detail


def test_cudnn_benchmark_choice_of_the_row_counts(tmp_path: Path) -> None:
    base = make_run(tmp_path / "a", [gpu_row(20.0, 1, cudnn_benchmark=True)], env=ENV)
    new = make_run(tmp_path / "b", [gpu_row(40.0, 2, cudnn_benchmark=False)], env=ENV)
    c = compare_runs(base, new)
    assert not c.regressed and "cudnn_benchmark" in c.not_comparable[0].detail


def test_a_run_from_before_the_fingerprint_is_still_compared(tmp_path: Path) -> None:
    old = {"accelerators": [{"device": "cuda:0", "name": "NVIDIA H200"}]}
    c = _compare(tmp_path, old, ENV)
    assert c.regressed and not c.not_comparable

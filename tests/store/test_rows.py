"""The rows a pool's parent writes without torch (cnnbench.store.rows) equal those the runners write."""

from __future__ import annotations

import pytest

from cnnbench import device
from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import expand, expand_benchmarks
from cnnbench.environment import device_available
from cnnbench.execution.dispatch import run_variant
from cnnbench.store import rows

CASES = """
defaults: {devices: [cpu, cuda, xpu, accelerator, "cuda:7"], dtypes: [float32, float64]}
cases:
  - id: plain
    op: relu
    inputs: {input: [1.0, -2.0]}
    expect: {output: [1.0, 0.0]}
  - id: ruled
    op: relu
    source: seed001
    inputs: {input: [1.0]}
    expect: {output: [1.0]}
    skip: [{dtype: float32, reason: "skipped by its rule"}]
    xfail: [{dtype: float64, reason: "expected to fail"}]
benchmark_defaults: {devices: [cpu, cuda, xpu], dtypes: [float32], max_time_s: 0.1}
benchmarks:
  - id: timed
    op: tanh
    inputs: {input: {randn: [8, 8], seed: 1}}
    skip: [{device: xpu, reason: "not on xpu"}]
"""


def test_the_row_of_a_missing_device_is_the_runners_own() -> None:
    loaded = load_text(CASES)
    variants = [*expand(loaded.cases), *expand_benchmarks(loaded.benchmarks)]
    missing = [v for v in variants if not device_available(v.device)]
    if not missing:
        pytest.skip("every device of the case file is present here")
    assert any(v.kind == "bench" for v in missing) and any(v.case.spec.skip for v in missing)
    for v in missing:
        expected = run_variant(v)
        assert rows.unavailable_row(v) == expected, v.id
        assert expected.status == "skipped"


def test_the_accelerator_name_is_the_device_modules() -> None:
    assert rows.ACCELERATOR == device.ACCELERATOR


def test_a_benchmarks_base_row_names_its_axes() -> None:
    loaded = load_text(CASES)
    (bench, *_) = expand_benchmarks(loaded.benchmarks)
    row = rows.bench_base_result(bench)
    assert row.kind == "bench" and row.status == "error"
    assert row.metrics == {"batch": 8, "mode": "inference", "memory_format": "contiguous", "compile": False,
                           "autocast": False}  # fmt: skip

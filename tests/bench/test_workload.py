"""Tests of cnnbench.bench.workload: what a benchmark variant times (its inputs at the variant's batch)."""

from __future__ import annotations

from cnnbench.bench import workload
from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import BenchVariant, expand_benchmarks


def _variants(text: str) -> dict[str, BenchVariant]:
    return {v.id: v for v in expand_benchmarks(load_text(text, "b.yaml").benchmarks)}


def test_batch_defaults_and_the_first_input_as_batch() -> None:
    text = """\
benchmarks:
  - {id: m, model: mnist_cnn, devices: [cpu]}
  - id: conv
    op: conv2d
    devices: [cpu]
    inputs: {input: {randn: [4, 3, 8, 8]}, weight: {randn: [2, 3, 3, 3]}}
  - id: conv-b
    op: conv2d
    devices: [cpu]
    batch: [1, 16]
    inputs: {input: {randn: [4, 3, 8, 8]}, weight: {randn: [2, 3, 3, 3]}}
"""
    ids = list(_variants(text))
    assert ids == [
        "m[cpu-float32-b1-inference-contiguous]",
        "conv[cpu-float32-b4-inference-contiguous]",
        "conv-b[cpu-float32-b1-inference-contiguous]",
        "conv-b[cpu-float32-b16-inference-contiguous]",
    ]
    specs = workload.input_specs(
        _variants(text)["conv-b[cpu-float32-b16-inference-contiguous]"].case.spec, 16
    )
    assert specs[0].randn == [16, 3, 8, 8] and specs[1].randn == [2, 3, 3, 3]

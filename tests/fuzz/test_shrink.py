"""Greedy shrinking of a failing case (cnnbench.fuzz.shrink)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnnbench.casefile.load import load_text
from cnnbench.casefile.variants import expand
from cnnbench.errors import UsageError
from cnnbench.fuzz.shrink import shrink_case, variant_case

BUDGET = 1 << 30
CASE = """
cases:
  - id: big
    op: conv2d
    args: {stride: 2, padding: 1, groups: 2}
    inputs:
      input: {randn: [4, 6, 11, 9], seed: 1}
      weight: {randn: [8, 3, 3, 5], seed: 2}
      bias: {randn: [8], seed: 3}
    devices: [cpu]
    dtypes: [float32, float64]
    memory_formats: [contiguous, channels_last]
    expect: {reference: numpy, shape: [4, 8, 6, 4]}
  - id: module
    module: Conv2d
    args: {in_channels: 1, out_channels: 1, kernel_size: 1}
    inputs: {input: {randn: [1, 1, 2, 2]}}
    expect: {reference: numpy}
"""


def _variants() -> dict[str, Any]:
    return {v.id: v for v in expand(load_text(CASE).cases)}


def test_a_variant_becomes_a_case_of_its_own() -> None:
    case = variant_case(_variants()["big[cpu-float64-channels_last]"])
    assert case["id"] == "big-shrunk" and case["devices"] == ["cpu"] and case["dtypes"] == ["float64"]
    assert case["memory_formats"] == ["channels_last"]
    assert case["expect"] == {"reference": "numpy"}  # a written shape would not hold once smaller


def test_module_cases_are_refused() -> None:
    with pytest.raises(UsageError, match="functional-op cases"):
        variant_case(_variants()["module[cpu-float32]"])


def test_shrinks_everything_the_failure_does_not_need() -> None:
    """A failure that needs a kernel height of at least 3, 2 groups and a bias keeps exactly those."""
    case = variant_case(_variants()["big[cpu-float32]"])

    def failing(c: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        weight = c["inputs"]["weight"]["randn"]
        ok = weight[2] >= 3 and c["args"].get("groups", 1) == 2 and "bias" in c["inputs"]
        return (c, "still fails") if ok else None

    shrunk = shrink_case(case, BUDGET, failing=failing)
    assert shrunk is not None
    assert shrunk.case["inputs"]["weight"]["randn"] == [2, 1, 3, 1]
    assert shrunk.case["inputs"]["input"]["randn"] == [1, 2, 1, 1]
    assert shrunk.case["inputs"]["bias"]["randn"] == [2]
    assert shrunk.case["args"] == {"stride": 1, "padding": 0, "groups": 2}
    assert shrunk.message == "still fails" and "big" not in shrunk.summary


def test_an_unneeded_bias_is_dropped() -> None:
    case = variant_case(_variants()["big[cpu-float32]"])
    shrunk = shrink_case(case, BUDGET, failing=lambda c: (c, "fails"))
    assert shrunk is not None and set(shrunk.case["inputs"]) == {"input", "weight"}


def test_a_passing_case_is_not_shrunk() -> None:
    assert shrink_case(variant_case(_variants()["big[cpu-float32]"]), BUDGET) is None


def test_a_real_failure_keeps_failing_the_same_way(tmp_path: Path) -> None:
    """A wrong expectation (zero tolerance in float32 on random data) shrinks to a smaller case that still
    fails against the reference, never into a rejected geometry."""
    case = variant_case(_variants()["big[cpu-float32]"])
    case["tolerance"] = {"float32": {"atol": 0, "rtol": 0}}
    shrunk = shrink_case(case, BUDGET)
    assert shrunk is not None and "reference output" in shrunk.message
    assert shrunk.case["expect"] == {"reference": "numpy"}
    before = sum(v for v in case["inputs"]["input"]["randn"])
    assert sum(shrunk.case["inputs"]["input"]["randn"]) < before

"""Dtype and compute precisions (cnnbench.ops.precision) and their effect on fill: exact (cnnbench.ops.exact)."""

from __future__ import annotations

import pytest

from cnnbench.casefile.load import load_text
from cnnbench.errors import CaseFileError
from cnnbench.ops.exact import Operand, plan_exact
from cnnbench.ops.precision import (
    compute_unit_roundoff,
    exact_bits,
    input_roundoff,
    math_kind,
    math_kind_of,
    narrows,
    planned_precision,
)


def test_tf32_narrows_float32_only() -> None:
    assert narrows("float32", "tf32") and narrows("float32", "bf16")
    assert not narrows("float32", "ieee") and not narrows("float32", None)
    assert not any(narrows(d, "tf32") for d in ("float64", "float16", "bfloat16", "int64"))
    assert input_roundoff("float32", "tf32") == 2**-11 and input_roundoff("float32", "ieee") == 0.0
    assert compute_unit_roundoff("float32", "tf32") == 2**-11
    assert compute_unit_roundoff("float32", "ieee") == 2**-24
    assert compute_unit_roundoff("float16", "float16") == 2**-11
    assert compute_unit_roundoff("int64", None) is None
    assert exact_bits("float32", "tf32") == 11 and exact_bits("float32", "ieee") == 24
    assert exact_bits("bfloat16", "bfloat16") == 8 and exact_bits("int8", None) is None


def test_math_kind() -> None:
    assert [math_kind(op) for op in ("conv2d", "conv_transpose3d", "linear", "matmul", "relu", None)] == [
        "conv",
        "conv",
        "matmul",
        "matmul",
        "none",
        "none",
    ]
    assert math_kind_of(["linear", "relu", "conv2d"]) == "conv"
    assert math_kind_of(["linear", "relu"]) == "matmul" and math_kind_of(["relu"]) == "none"


def test_planned_precision() -> None:
    assert planned_precision("conv2d", "float32", ["cpu", "cuda"], None) == "tf32"  # cuDNN's default
    assert planned_precision("conv2d", "float32", ["cpu"], None) is None
    assert planned_precision("conv2d", "float32", ["cpu"], "tf32") == "tf32"
    assert planned_precision("conv2d", "float32", ["cuda"], "ieee") is None
    assert planned_precision("linear", "float32", ["cuda"], None) is None  # cuBLAS defaults to IEEE
    assert planned_precision("linear", "float32", ["cuda"], "tf32") == "tf32"
    assert planned_precision("conv2d", "float16", ["cuda"], "tf32") is None
    assert planned_precision("relu", "float32", ["cuda"], "tf32") is None


def _operands(weight_max: float) -> list[Operand]:
    return [
        Operand("inputs.input", "data", (1, 4, 5, 5), True),
        Operand("state.weight", "weight", (2, 4, 3, 3), False, max_abs=weight_max),
    ]


def test_written_operand_beyond_2_11_cannot_be_exact_in_tf32() -> None:
    plan_exact("conv2d", {}, _operands(3000.0), "float32")  # IEEE: 36 * 4 * 3000 < 2^24
    with pytest.raises(ValueError, match=r"computed in tf32 .*2\^11 = 2048.*state.weight.*3000"):
        plan_exact("conv2d", {}, _operands(3000.0), "float32", "tf32")
    plan = plan_exact("conv2d", {}, _operands(2.0), "float32", "tf32")
    assert plan.zero_tolerance  # small integers stay exact: TF32 products of them accumulate in float32


CASE = """
cases:
  - id: big-weight
    module: Conv2d
    args: {{in_channels: 1, out_channels: 1, kernel_size: 1}}
    fill: exact
    {pin}
    devices: {devices}
    dtypes: [float32]
    inputs: {{x: {{randn: [1, 1, 2, 2]}}}}
    state: {{weight: [[[[3000.0]]]], bias: [0.0]}}
    expect: {{reference: numpy}}
"""


def test_load_time_refusal_under_tf32_with_file_and_line() -> None:
    load_text(CASE.format(pin="", devices="[cpu]"), "t.yaml")
    load_text(CASE.format(pin="fp32_precision: ieee", devices="[cpu, cuda]"), "t.yaml")
    for pin, devices in (("", "[cpu, cuda]"), ("fp32_precision: tf32", "[cpu]")):
        with pytest.raises(CaseFileError, match=r"t\.yaml:\d+.*computed in tf32"):
            load_text(CASE.format(pin=pin, devices=devices), "t.yaml")


def test_unknown_fp32_precision_is_refused() -> None:
    with pytest.raises(CaseFileError, match=r"t\.yaml:\d+.*fp32_precision"):
        load_text(CASE.format(pin="fp32_precision: tf33", devices="[cpu]"), "t.yaml")

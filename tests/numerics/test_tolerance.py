"""The scaled tolerance model (cnnbench.numerics.tolerance) and the reduction lengths it uses (cnnbench.ops.lowering)."""

from __future__ import annotations

import math

import pytest

from cnnbench.numerics.tolerance import SAFETY, ZERO, Tolerance, reference_tolerance
from cnnbench.ops.lowering import gradient_lengths, lower_module, parameter_shapes, reduction_length
from cnnbench.ops.precision import UNIT_ROUNDOFF


def test_unit_roundoffs() -> None:
    assert UNIT_ROUNDOFF == {"float64": 2**-53, "float32": 2**-24, "float16": 2**-11, "bfloat16": 2**-8}


def test_sum_tolerance_formula() -> None:
    tol = reference_tolerance("conv2d", "float32", 576, scale=10.0)
    u = 2**-24
    assert tol.rtol == SAFETY * u
    assert tol.atol == pytest.approx(SAFETY * (u + u * math.sqrt(576)) * 10.0)


def test_half_types_accumulate_in_float32() -> None:
    small, large = (reference_tolerance("linear", "float16", k, scale=1.0).atol for k in (1, 4096))
    assert large / small < 1.01  # sqrt(4096) * 2^-24 is tiny next to 2^-11
    f32_small, f32_large = (reference_tolerance("linear", "float32", k, scale=1.0).atol for k in (1, 4096))
    assert f32_large / f32_small == pytest.approx((1 + 64) / 2)


def test_tolerance_grows_with_k_and_scale() -> None:
    tols = [reference_tolerance("conv2d", "float32", k, scale=2.0).atol for k in (1, 9, 576, 4608)]
    assert tols == sorted(tols)
    assert reference_tolerance("conv2d", "float32", 9, scale=4.0).atol == pytest.approx(
        2 * reference_tolerance("conv2d", "float32", 9, scale=2.0).atol
    )


def test_selections_round_only_their_inputs() -> None:
    assert reference_tolerance("max_pool2d", "float64", 1, scale=5.0) == ZERO
    assert reference_tolerance("relu", "bfloat16", 1, scale=5.0) == Tolerance(atol=0.0, rtol=2**-8)
    summed = reference_tolerance("max_pool2d", "float32", 9, scale=5.0, exact_data_movement=False)
    assert summed.atol > 0


def test_input_sensitive_ops_add_the_input_scale() -> None:
    plain = reference_tolerance("softmax", "float32", 10, scale=1.0)
    wide = reference_tolerance("softmax", "float32", 10, scale=1.0, input_scale=50.0)
    assert wide.atol - plain.atol == pytest.approx(SAFETY * 2 * 2**-24 * 50.0)
    assert reference_tolerance("conv2d", "float32", 10, 1.0, 50.0) == reference_tolerance(
        "conv2d", "float32", 10, 1.0
    )


def test_integer_results_compare_exactly() -> None:
    assert reference_tolerance("conv2d", "int64", 100, scale=1e6) == ZERO


@pytest.mark.parametrize(
    ("op", "args", "shapes", "k"),
    [
        ("conv2d", {"groups": 2}, [(1, 8, 9, 9), (6, 4, 3, 3)], 36),
        ("conv1d", {}, [(1, 3, 9), (2, 3, 5)], 15),
        ("conv_transpose2d", {"groups": 2}, [(1, 8, 4, 4), (8, 3, 3, 3)], 36),
        ("linear", {}, [(5, 40), (7, 40)], 40),
        ("avg_pool2d", {"kernel_size": [2, 3]}, [(1, 1, 6, 6)], 6),
        ("adaptive_avg_pool2d", {"output_size": [3, 4]}, [(1, 1, 7, 10)], 9),
        ("softmax", {"dim": -1}, [(3, 4, 100)], 100),
        ("softmax", {}, [(3, 7)], 7),
        ("batch_norm", {"training": True}, [(4, 3, 5, 5)], 100),
        ("batch_norm", {"training": False}, [(4, 3, 5, 5)], 1),
        ("interpolate", {"mode": "bilinear"}, [(1, 2, 3, 3)], 4),
        ("interpolate", {"mode": "nearest"}, [(1, 2, 3, 3)], 1),
        ("max_pool2d", {"kernel_size": 3}, [(1, 1, 9, 9)], 1),
    ],
)
def test_reduction_length(op: str, args: dict[str, object], shapes: list[tuple[int, ...]], k: int) -> None:
    assert reduction_length(op, args, shapes) == k


def test_gradient_lengths() -> None:
    conv = gradient_lengths("conv2d", {"groups": 1}, [(2, 3, 6, 6), (4, 3, 3, 3)], (2, 4, 4, 4))
    assert conv == {"input": 36, "weight": 32, "bias": 32}
    lin = gradient_lengths("linear", {}, [(2, 5, 20), (6, 20)], (2, 5, 6))
    assert lin == {"input": 6, "weight": 10, "bias": 10}
    assert gradient_lengths("batch_norm", {}, [(4, 3, 2, 2)], (4, 3, 2, 2))["weight"] == 16


def test_module_parameter_shapes_and_lowering() -> None:
    assert parameter_shapes(
        "Conv2d", {"in_channels": 4, "out_channels": 6, "kernel_size": [3, 2], "groups": 2}
    ) == {
        "weight": (6, 2, 3, 2),
        "bias": (6,),
    }
    assert parameter_shapes(
        "ConvTranspose2d", {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "bias": False}
    ) == {"weight": (4, 6, 3, 3)}
    assert parameter_shapes("Linear", {"in_features": 3, "out_features": 2}) == {
        "weight": (2, 3),
        "bias": (2,),
    }
    lowered = lower_module("BatchNorm2d", {"num_features": 3, "track_running_stats": False}, "eval")
    assert lowered.args["training"] is True and lowered.tensors == ("", "", "weight", "bias")
    with pytest.raises(ValueError, match="needs the argument"):
        lower_module("MaxPool2d", {}, "eval")
    with pytest.raises(ValueError, match="no functional reference"):
        lower_module("Unflatten", {}, "eval")

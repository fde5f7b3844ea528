"""The exact-by-construction rule (cnnbench.casefile.exact) and its integers (cnnbench.numerics.fill.exact_integers)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnbench.casefile.exact import check_exact_fill
from cnnbench.casefile.tensors import FullSpec, OnesSpec, RandnSpec
from cnnbench.numerics.fill import exact_integers
from cnnbench.numerics.subject import _exact_values
from cnnbench.ops.exact import SELECT_RANGE, Operand, plan_exact
from cnnbench.ops.precision import PRECISION_BITS


def sum_operands(k: int, *, weight: Operand | None = None, bias: bool = True) -> list[Operand]:
    ops = [Operand("inputs.x", "data", (2, k), True), weight or Operand("inputs.w", "weight", (3, k), True)]
    if bias:
        ops.append(Operand("inputs.b", "bias", (3,), True))
    return ops


# --- exact_integers -----------------------------------------------------------------------------------------


def test_exact_integers_are_seeded_non_zero_and_in_range() -> None:
    a = exact_integers((4, 5, 6), seed=3, high=4)
    assert torch.equal(a, exact_integers((4, 5, 6), seed=3, high=4))
    assert not torch.equal(a, exact_integers((4, 5, 6), seed=4, high=4))
    assert a.dtype == torch.float64 and bool((a != 0).all()) and int(a.abs().max()) <= 4
    assert bool((a == a.round()).all())
    assert {int(v) for v in a.unique()} == {-4, -3, -2, -1, 1, 2, 3, 4}


def test_exact_integers_keep_exactly_nonzeros_per_row() -> None:
    w = exact_integers((6, 3, 3, 3), seed=1, high=1, nonzeros=5)
    assert ((w.reshape(6, -1) != 0).sum(dim=1) == 5).all()
    assert set(w.unique().tolist()) == {-1.0, 0.0, 1.0}
    # The positions differ from row to row (seeded, not a fixed pattern).
    masks = {tuple((row != 0).tolist()) for row in w.reshape(6, -1)}
    assert len(masks) > 1


def test_exact_integers_edge_shapes() -> None:
    assert exact_integers((0, 3), seed=0, high=4).shape == (0, 3)
    assert exact_integers((), seed=0, high=4).shape == ()
    assert exact_integers((2, 3), seed=0, high=4, nonzeros=10).count_nonzero() == 6


def test_transposed_weights_are_thinned_per_output_channel() -> None:
    """conv_transpose weight (C_in, C_out/g, k): each output channel's (input channel, tap) slab is the row."""
    ops = [Operand("x", "data", (1, 80, 3, 3), True), Operand("w", "weight", (80, 4, 3, 3), True)]
    plan = plan_exact("conv_transpose2d", {"groups": 2}, ops, "bfloat16")
    assert (plan.k, plan.nonzeros) == (360, 256)
    w = _exact_values(plan, "weight", (80, 4, 3, 3), seed=0, groups=2)
    per_output = w.reshape(2, 40, 4, 9).permute(0, 2, 1, 3).reshape(8, -1)
    assert ((per_output != 0).sum(dim=1) == 256).all()


# --- plan_exact ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "k", "r", "nonzeros"),
    [
        ("float32", 4608, 4, None),
        ("float16", 127, 4, None),
        ("float16", 128, 2, None),
        ("float16", 2047, 1, None),
        ("float16", 4608, 1, 2047),
        ("bfloat16", 15, 4, None),
        ("bfloat16", 63, 2, None),
        ("bfloat16", 255, 1, None),
        ("bfloat16", 576, 1, 255),
    ],
)
def test_the_densest_exact_plan(dtype: str, k: int, r: int, nonzeros: int | None) -> None:
    plan = plan_exact("linear", {}, sum_operands(k), dtype)
    assert (plan.data_range, plan.weight_range, plan.nonzeros) == (r, r, nonzeros)
    assert plan.largest <= 2 ** PRECISION_BITS[dtype] == plan.bound


def test_zero_tolerance_only_for_sums_and_selections_in_float32_and_float64() -> None:
    assert plan_exact(
        "conv2d", {}, [Operand("x", "data", (1, 2, 4, 4), True), *sum_operands(9)[1:]], "float32"
    ).zero_tolerance
    assert not plan_exact("linear", {}, sum_operands(9), "float16").zero_tolerance
    avg = plan_exact("avg_pool2d", {"kernel_size": 2}, [Operand("x", "data", (1, 1, 4, 4), True)], "float64")
    assert not avg.zero_tolerance


def test_a_kept_weight_that_overflows_is_refused_naming_the_bound() -> None:
    kept = Operand("inputs.w", "weight", (3, 300), False, max_abs=1.0)
    with pytest.raises(ValueError, match=r"2\^8 = 256.*K = 300.*let the weight be generated"):
        plan_exact("linear", {}, sum_operands(300, weight=kept), "bfloat16")
    assert plan_exact("linear", {}, sum_operands(300, weight=kept), "float16").nonzeros is None


def test_average_pooling_shrinks_its_range_then_refuses() -> None:
    data = [Operand("x", "data", (1, 1, 16, 16), True)]
    plan = plan_exact("avg_pool2d", {"kernel_size": 16}, data, "bfloat16")
    assert (plan.k, plan.data_range) == (256, 1)
    with pytest.raises(ValueError, match="avg_pool2d sums 289 values, up to 289 > 256"):
        plan_exact(
            "avg_pool2d", {"kernel_size": 17}, [Operand("x", "data", (1, 1, 17, 17), True)], "bfloat16"
        )


def test_selections_use_a_wide_range() -> None:
    plan = plan_exact(
        "max_pool2d", {"kernel_size": 3}, [Operand("x", "data", (1, 1, 6, 6), True)], "bfloat16"
    )
    assert plan.data_range == SELECT_RANGE and plan.zero_tolerance is False
    with pytest.raises(ValueError, match="magnitude 300"):
        plan_exact("relu", {}, [Operand("x", "data", (4,), False, max_abs=300.0)], "bfloat16")


def test_integer_dtypes_need_no_bound() -> None:
    assert plan_exact("linear", {}, sum_operands(10**6), "int64").nonzeros is None


# --- check_exact_fill (what the loader calls) -----------------------------------------------------------------


def test_check_exact_fill_reads_kept_tensors() -> None:
    inputs = {"input": RandnSpec(randn=[1, 300]), "weight": OnesSpec(ones=[2, 300])}
    check_exact_fill("linear", None, {}, inputs, {}, "eval", ["float32", "float16"])
    with pytest.raises(ValueError, match="bfloat16"):
        check_exact_fill("linear", None, {}, inputs, {}, "eval", ["float32", "bfloat16"])
    halves = {"input": RandnSpec(randn=[1, 3]), "weight": FullSpec(full=[2, 3], value=0.5)}
    with pytest.raises(ValueError, match="integer values"):
        check_exact_fill("linear", None, {}, halves, {}, "eval", ["float32"])


def test_check_exact_fill_refuses_ops_it_cannot_make_exact() -> None:
    with pytest.raises(ValueError, match="cannot make sigmoid exact"):
        check_exact_fill("sigmoid", None, {}, {"input": RandnSpec(randn=[3])}, {}, "eval", ["float32"])
    with pytest.raises(ValueError, match=r"BatchNorm2d \(batch_norm\)"):
        check_exact_fill(
            None,
            "BatchNorm2d",
            {"num_features": 2},
            {"input": RandnSpec(randn=[2, 2, 2, 2])},
            {},
            "eval",
            ["float32"],
        )


def test_check_exact_fill_counts_module_parameters() -> None:
    args = {"in_channels": 64, "out_channels": 8, "kernel_size": 3}
    check_exact_fill(
        None, "Conv2d", args, {"input": RandnSpec(randn=[1, 64, 5, 5])}, {}, "eval", ["bfloat16"]
    )
    state = {"weight": OnesSpec(ones=[8, 64, 3, 3])}
    with pytest.raises(ValueError, match="K = 576"):
        check_exact_fill(
            None, "Conv2d", args, {"input": RandnSpec(randn=[1, 64, 5, 5])}, state, "eval", ["bfloat16"]
        )


# --- the property itself: torch computes these sums exactly -------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    c_in=st.integers(1, 96),
    kernel=st.integers(1, 3),
    dtype=st.sampled_from(["float32", "float16", "bfloat16"]),
    seed=st.integers(0, 10**6),
)
def test_conv2d_of_exact_integers_is_exact(c_in: int, kernel: int, dtype: str, seed: int) -> None:
    k = c_in * kernel * kernel
    ops = [
        Operand("x", "data", (1, c_in, 6, 6), True),
        Operand("w", "weight", (4, c_in, kernel, kernel), True),
        Operand("b", "bias", (4,), True),
    ]
    plan = plan_exact("conv2d", {}, ops, dtype)
    x = _exact_values(plan, "data", (1, c_in, 6, 6), seed, 1)
    w = _exact_values(plan, "weight", (4, c_in, kernel, kernel), seed + 1, 1)
    b = _exact_values(plan, "bias", (4,), seed + 2, 1)
    exact = F.conv2d(x, w, b)
    torch_dtype = getattr(torch, dtype)
    got = F.conv2d(x.to(torch_dtype), w.to(torch_dtype), b.to(torch_dtype)).double()
    assert torch.equal(got, exact), (k, plan)
    assert float(exact.abs().max()) <= plan.largest <= plan.bound
    assert math.isfinite(plan.largest)

"""Tests pinning cnnbench.numerics.reference.pool (max and avg pooling) to hand-computed values and torch."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch.nn.functional as F
from reference_support import (
    NOTES_X,
    T,
    assert_close,
    assert_grads,
    autograd,
    check_random_geometries,
    pick,
    rng_for,
    tie_heavy,
    torch_raises_iff_reference_raises,
)

from cnnbench.numerics import reference as R

# ---------------------------------------------------------------------------------------------------------
# hand-computed values from the study notes
# ---------------------------------------------------------------------------------------------------------


def test_notes_max_pool_ceil_mode() -> None:
    np.testing.assert_array_equal(
        R.max_pool2d(NOTES_X[None, None], 3, ceil_mode=True)[0, 0], [[5, 3], [4, 5]]
    )
    np.testing.assert_array_equal(R.max_pool2d(NOTES_X[None, None], 3, ceil_mode=False)[0, 0], [[5]])


def test_notes_max_pool_2x2() -> None:
    X = np.array([3, 4, 6, 5, 2, 4, 6, 8, 1, 6, 7, 8, 9, 7, 4, 6], dtype=float).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(R.max_pool2d(X, 2)[0, 0], [[4, 8], [9, 8]])


# ---------------------------------------------------------------------------------------------------------
# pooling against torch
# ---------------------------------------------------------------------------------------------------------


POOL_SIZES = [(5, 5), (6, 7), (7, 8), (8, 8), (4, 3)]


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), list(itertools.product([1, 2, 3, (2, 3)], [None, 1, 2, (2, 3)], [0, 1]))
)
def test_max_pool2d_matches_torch(kernel: Any, stride: Any, padding: int) -> None:
    rng = rng_for("mp2", kernel, stride, padding)
    for size, dilation, ceil_mode in itertools.product(POOL_SIZES, [1, 2], [False, True]):
        x = tie_heavy(rng, (2, 3, *size))
        args = {"stride": stride, "padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}
        pair = torch_raises_iff_reference_raises(
            lambda x=x, args=args: R.max_pool2d(x, kernel, return_indices=True, **args),
            lambda x=x, args=args: F.max_pool2d(T(x), kernel, return_indices=True, **args),
        )
        if pair is None:
            continue
        (out, idx), (t_out, t_idx) = pair
        msg = f"size={size} {args}"
        assert_close(out, t_out, err_msg=msg)
        np.testing.assert_array_equal(idx, t_idx.numpy(), err_msg=msg)
        assert idx.dtype == np.int64
        assert_close(R.max_pool2d(x, kernel, **args), t_out, err_msg=msg)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), list(itertools.product([1, 2, 3, 4], [None, 1, 2, 3], [0, 1, 2]))
)
def test_max_pool1d_matches_torch(kernel: int, stride: Any, padding: int) -> None:
    rng = rng_for("mp1", kernel, stride, padding)
    for length, dilation, ceil_mode in itertools.product([5, 6, 7, 8, 11], [1, 2], [False, True]):
        x = tie_heavy(rng, (2, 2, length))
        args = {"stride": stride, "padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}
        pair = torch_raises_iff_reference_raises(
            lambda x=x, args=args: R.max_pool1d(x, kernel, return_indices=True, **args),
            lambda x=x, args=args: F.max_pool1d(T(x), kernel, return_indices=True, **args),
        )
        if pair is None:
            continue
        (out, idx), (t_out, t_idx) = pair
        msg = f"length={length} {args}"
        assert_close(out, t_out, err_msg=msg)
        np.testing.assert_array_equal(idx, t_idx.numpy(), err_msg=msg)
        # without indices torch takes a different (max_pool1d_impl) kernel: values must agree too
        assert_close(R.max_pool1d(x, kernel, **args), F.max_pool1d(T(x), kernel, **args), err_msg=msg)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"), [(2, None, 0, 1), (3, 2, 1, 1), ((2, 3, 2), 1, 1, 2)]
)
def test_max_pool3d_matches_torch(
    kernel: Any, stride: Any, padding: int, dilation: int, ceil_mode: bool
) -> None:
    rng = rng_for("mp3", kernel, stride, padding, dilation, ceil_mode)
    x = tie_heavy(rng, (1, 2, 5, 6, 7))
    args = {"stride": stride, "padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}
    out, idx = R.max_pool3d(x, kernel, return_indices=True, **args)
    t_out, t_idx = F.max_pool3d(T(x), kernel, return_indices=True, **args)
    assert_close(out, t_out)
    np.testing.assert_array_equal(idx, t_idx.numpy())


def test_max_pool_nan_rule() -> None:
    # torch scans each window row-major and replaces on `val > max or isnan(val)`: NaN propagates and the
    # index is the LAST NaN in the window; ties keep the first maximum.
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 0.0, 5.0, 5.0, 2.0]]])
    out, idx = R.max_pool1d(x, 4, stride=2, return_indices=True)
    t_out, t_idx = F.max_pool1d(T(x), 4, stride=2, return_indices=True)
    np.testing.assert_array_equal(idx, t_idx.numpy())
    np.testing.assert_array_equal(idx[0, 0], [3, 3, 5])
    assert np.isnan(out[0, 0, :2]).all() and out[0, 0, 2] == 5.0
    assert_close(out, t_out, equal_nan=True)
    # without return_indices torch runs a separate 1-D kernel (max_pool1d_impl): same values
    assert_close(R.max_pool1d(x, 4, stride=2), F.max_pool1d(T(x), 4, stride=2), equal_nan=True)


@pytest.mark.parametrize("seed", range(4))
def test_max_pool2d_nan_and_inf_match_torch(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = tie_heavy(rng, (2, 2, 7, 6))
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.1] = -np.inf
    x[rng.random(x.shape) < 0.05] = np.inf
    for args in [
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 2, "dilation": 2},
    ]:
        out, idx = R.max_pool2d(x, return_indices=True, **args)
        t_out, t_idx = F.max_pool2d(T(x), return_indices=True, **args)
        np.testing.assert_array_equal(out, t_out.numpy())
        np.testing.assert_array_equal(idx, t_idx.numpy())
        for size in [(3, 2), (1, 1), (7, 6), (4, 5)]:
            out, idx = R.adaptive_max_pool2d(x, size, return_indices=True)
            t_out, t_idx = F.adaptive_max_pool2d(T(x), size, return_indices=True)
            np.testing.assert_array_equal(out, t_out.numpy())
            np.testing.assert_array_equal(idx, t_idx.numpy())


def test_max_pool_window_without_input_tap() -> None:
    # dilation 3, padding 1: the only window's taps are at -1 and 2, both outside a length-2 input
    x = np.array([[[1.0, 2.0]]])
    out, idx = R.max_pool1d(x, 2, stride=1, padding=1, dilation=3, return_indices=True)
    t_out, t_idx = F.max_pool1d(T(x), 2, stride=1, padding=1, dilation=3, return_indices=True)
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(idx, t_idx.numpy())


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"),
    list(itertools.product([1, 2, 3, (3, 2)], [None, 1, 2, 3, (2, 1)], [0, 1, (1, 0)])),
)
def test_avg_pool2d_matches_torch(kernel: Any, stride: Any, padding: Any) -> None:
    rng = rng_for("ap2", kernel, stride, padding)
    flags = itertools.product(POOL_SIZES, [False, True], [True, False], [None, 3])
    for size, ceil_mode, count_include_pad, divisor_override in flags:
        x = rng.standard_normal((2, 2, *size))
        args = {
            "stride": stride,
            "padding": padding,
            "ceil_mode": ceil_mode,
            "count_include_pad": count_include_pad,
            "divisor_override": divisor_override,
        }
        pair = torch_raises_iff_reference_raises(
            lambda x=x, args=args: R.avg_pool2d(x, kernel, **args),
            lambda x=x, args=args: F.avg_pool2d(T(x), kernel, **args),
        )
        if pair is not None:
            assert_close(*pair, err_msg=f"size={size} {args}")


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), list(itertools.product([1, 2, 3, 4, 7], [None, 1, 2, 3], [0, 1, 2]))
)
def test_avg_pool1d_matches_torch(kernel: int, stride: Any, padding: int) -> None:
    rng = rng_for("ap1", kernel, stride, padding)
    for length, ceil_mode, count_include_pad in itertools.product(
        [5, 6, 7, 8, 9], [False, True], [True, False]
    ):
        x = rng.standard_normal((2, 3, length))
        args = {
            "stride": stride,
            "padding": padding,
            "ceil_mode": ceil_mode,
            "count_include_pad": count_include_pad,
        }
        pair = torch_raises_iff_reference_raises(
            lambda x=x, args=args: R.avg_pool1d(x, kernel, **args),
            lambda x=x, args=args: F.avg_pool1d(T(x), kernel, **args),
        )
        if pair is not None:
            assert_close(*pair, err_msg=f"length={length} {args}")


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("divisor_override", [None, 7])
def test_avg_pool3d_matches_torch(count_include_pad: bool, divisor_override: int | None) -> None:
    rng = rng_for("ap3", count_include_pad, divisor_override)
    x = rng.standard_normal((1, 2, 5, 6, 7))
    for args in [
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": (2, 3, 2), "stride": (2, 2, 3), "padding": (1, 0, 1), "ceil_mode": True},
        {"kernel_size": 2},
    ]:
        full = {**args, "count_include_pad": count_include_pad, "divisor_override": divisor_override}
        assert_close(R.avg_pool3d(x, **full), F.avg_pool3d(T(x), **full))


# The ceil-mode edge cases behind pytorch/pytorch#45357, #100987 and #116420: the last window may start in
# the right padding (and is then dropped), or overhang the padded extent (and then has a smaller divisor).
@pytest.mark.parametrize("size", [5, 6, 7, 8])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_ceil_mode_kernel3_stride2_padding1(size: int, count_include_pad: bool) -> None:
    rng = rng_for("ceil", size, count_include_pad)
    x = rng.standard_normal((1, 2, size, size))
    args = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}
    assert_close(
        R.avg_pool2d(x, count_include_pad=count_include_pad, **args),
        F.avg_pool2d(T(x), count_include_pad=count_include_pad, **args),
    )
    out, idx = R.max_pool2d(x, return_indices=True, **args)
    t_out, t_idx = F.max_pool2d(T(x), return_indices=True, **args)
    assert_close(out, t_out)
    np.testing.assert_array_equal(idx, t_idx.numpy())
    assert out.shape[-1] == size // 2 + 1


def test_ceil_mode_drops_window_starting_in_right_padding() -> None:
    # L=5, k=2, s=2, p=1: ceil((5+2-2)/2)+1 = 4 windows, but the 4th would start at 6-1 = 5 >= L: dropped
    x = np.arange(5.0)[None, None]
    assert R.max_pool1d(x, 2, 2, 1, ceil_mode=True).shape == (1, 1, 3)
    assert F.max_pool1d(T(x), 2, 2, 1, ceil_mode=True).shape == (1, 1, 3)
    assert_close(R.avg_pool1d(x, 2, 2, 1, ceil_mode=True), F.avg_pool1d(T(x), 2, 2, 1, ceil_mode=True))


def test_avg_pool_ceil_overhang_divisor_hand_values() -> None:
    # [1..5], kernel 2, stride 2, ceil: last window covers only `5` and is divided by 1, not 2
    x = np.arange(1.0, 6.0)[None, None]
    np.testing.assert_array_equal(R.avg_pool1d(x, 2, ceil_mode=True)[0, 0], [1.5, 3.5, 5.0])
    # AvgPool2d(2, stride=3, ceil_mode=True) on arange(49) 7x7
    y = np.arange(49.0).reshape(1, 1, 7, 7)
    np.testing.assert_array_equal(
        R.avg_pool2d(y, 2, 3, ceil_mode=True)[0, 0], [[4, 7, 9.5], [25, 28, 30.5], [42.5, 45.5, 48]]
    )
    # padding 1 (counted), window hanging past the padded extent: divisor clipped to the padded extent
    z = np.ones((1, 1, 6))
    out = R.avg_pool1d(z, 3, 2, 1, ceil_mode=True)
    assert_close(out, F.avg_pool1d(T(z), 3, 2, 1, ceil_mode=True))


def test_unbatched_pools_match_torch() -> None:
    x = tie_heavy(np.random.default_rng(3), (3, 6, 7))
    assert_close(R.max_pool2d(x, 3, 2, 1, ceil_mode=True), F.max_pool2d(T(x), 3, 2, 1, ceil_mode=True))
    assert_close(R.avg_pool2d(x, 3, 2, 1, ceil_mode=True), F.avg_pool2d(T(x), 3, 2, 1, ceil_mode=True))
    assert_close(R.max_pool1d(x[0], 2), F.max_pool1d(T(x[0]), 2))


# ---------------------------------------------------------------------------------------------------------
# seeded random geometries: combinations the grids above do not enumerate
# ---------------------------------------------------------------------------------------------------------


def _random_case(op: str, rng: np.random.Generator) -> tuple[Callable[[], Any], Callable[[], Any]]:
    pair = lambda lo, hi: (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))  # noqa: E731
    size = pair(1, 10)
    x = tie_heavy(rng, (2, 2, *size))
    args: dict[str, Any] = {
        "kernel_size": pick(rng, [1, 2, 3, pair(1, 5)]),
        "stride": pick(rng, [None, 1, 2, 3, pair(1, 4)]),
        "padding": pick(rng, [0, 1, 2, pair(0, 3)]),
        "ceil_mode": bool(rng.random() < 0.5),
    }
    if op == "max_pool2d":
        args["dilation"] = pick(rng, [1, 2, pair(1, 4)])
        return (
            lambda: R.max_pool2d(x, return_indices=True, **args),
            lambda: F.max_pool2d(T(x), return_indices=True, **args),
        )
    args["count_include_pad"] = bool(rng.random() < 0.5)
    args["divisor_override"] = pick(rng, [None, None, 1, 5])
    return (lambda: R.avg_pool2d(x, **args)), (lambda: F.avg_pool2d(T(x), **args))


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_random_geometries_match_torch(op: str) -> None:
    check_random_geometries(op, _random_case)


# ---------------------------------------------------------------------------------------------------------
# gradients against torch.autograd
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 1},  # overlapping windows: gradients accumulate
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": (2, 3), "stride": (1, 2), "dilation": 2, "padding": 1},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True},
    ],
    ids=repr,
)
def test_max_pool2d_gradients_match_autograd(args: dict[str, Any]) -> None:
    rng = rng_for("gmp2", repr(args))
    for size in [(7, 6), (8, 8)]:
        x = tie_heavy(rng, (2, 2, *size))  # ties: the gradient must go to torch's chosen (first) maximum
        go, theirs = autograd(F.max_pool2d, rng, {"x": x}, **args)
        assert_grads(R.GRADIENTS["max_pool2d"](go, x, **args), {"input": theirs["x"]})


def test_max_pool1d_3d_gradients_match_autograd() -> None:
    rng = rng_for("gmp13")
    x = tie_heavy(rng, (2, 3, 9))
    args = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}
    go, theirs = autograd(F.max_pool1d, rng, {"x": x}, **args)
    assert_grads(R.GRADIENTS["max_pool1d"](go, x, **args), {"input": theirs["x"]})
    y = tie_heavy(rng, (1, 2, 4, 5, 5))
    go, theirs = autograd(F.max_pool3d, rng, {"x": y}, **args)
    assert_grads(R.GRADIENTS["max_pool3d"](go, y, **args), {"input": theirs["x"]})


@pytest.mark.parametrize(
    "args",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 1, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
        {
            "kernel_size": (3, 2),
            "stride": (2, 3),
            "padding": (1, 0),
            "ceil_mode": True,
            "divisor_override": 4,
        },
    ],
    ids=repr,
)
def test_avg_pool2d_gradients_match_autograd(args: dict[str, Any]) -> None:
    rng = rng_for("gap2", repr(args))
    for size in [(7, 6), (8, 8), (5, 5)]:
        x = rng.standard_normal((2, 2, *size))
        go, theirs = autograd(F.avg_pool2d, rng, {"x": x}, **args)
        assert_grads(R.GRADIENTS["avg_pool2d"](go, x, **args), {"input": theirs["x"]})


def test_avg_pool1d_3d_gradients_match_autograd() -> None:
    rng = rng_for("gap13")
    x = rng.standard_normal((2, 3, 9))
    args = {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True, "count_include_pad": False}
    go, theirs = autograd(F.avg_pool1d, rng, {"x": x}, **args)
    assert_grads(R.GRADIENTS["avg_pool1d"](go, x, **args), {"input": theirs["x"]})
    y = rng.standard_normal((1, 2, 5, 4, 6))
    args3 = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}
    go, theirs = autograd(F.avg_pool3d, rng, {"x": y}, **args3)
    assert_grads(R.GRADIENTS["avg_pool3d"](go, y, **args3), {"input": theirs["x"]})


def test_max_pool_gradient_of_an_empty_batch() -> None:
    # torch pools (and differentiates) a batch of 0; the argmax scatter once failed to reshape it
    x = np.zeros((0, 2, 4, 4))
    go, theirs = autograd(F.max_pool2d, rng_for("gmp-empty"), {"x": x}, kernel_size=2)
    assert_grads(R.max_pool2d_backward(go, x, 2), {"input": theirs["x"]})

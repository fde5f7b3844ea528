"""Tests pinning cnnbench.numerics.reference to hand-computed values and to PyTorch (float64, CPU)."""

from __future__ import annotations

import inspect
import itertools
import math
import subprocess
import sys
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnbench.numerics import reference as R

# torch warns (once) that an asymmetric 'same' padding copies the input: expected, and exercised on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

TOL: dict[str, float] = {"rtol": 1e-12, "atol": 1e-12}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_torch() -> Any:
    """Tiny tensors: one intra-op thread avoids OpenMP wake-up costs that dominate on a shared 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def T(a: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def assert_close(actual: Any, expected: Any, **kw: Any) -> None:
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    actual = np.asarray(actual)
    assert actual.shape == np.shape(expected), (actual.shape, np.shape(expected))
    np.testing.assert_allclose(actual, expected, **{**TOL, **kw})


def rng_for(*key: Any) -> np.random.Generator:
    """A generator seeded from the test's parameters: reproducible across runs (unlike hash())."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def torch_raises_iff_reference_raises(
    ref: Callable[[], Any], tor: Callable[[], Any]
) -> tuple[Any, Any] | None:
    """Run both; if torch rejects the config the reference must raise ValueError too (and vice versa)."""
    try:
        expected = tor()
    except (RuntimeError, ValueError):
        with pytest.raises(ValueError):
            ref()
        return None
    return ref(), expected


def direct_conv2d(x: np.ndarray, k: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Textbook single-channel cross-correlation with explicit loops (independent of the reference)."""
    x = np.pad(x, padding)
    kh, kw = k.shape
    oh = (x.shape[0] - kh) // stride + 1
    ow = (x.shape[1] - kw) // stride + 1
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            acc = 0.0
            for a in range(kh):
                for b in range(kw):
                    acc += x[i * stride + a, j * stride + b] * k[a, b]
            out[i, j] = acc
    return out


# ---------------------------------------------------------------------------------------------------------
# hand-computed values from the study notes
# ---------------------------------------------------------------------------------------------------------

NOTES_X = np.array([[1, 2, 1, 0], [2, 0, 1, 3], [0, 5, 4, 2], [4, 1, 2, 5]], dtype=float)
NOTES_K = np.array([[0, 1, 0], [2, 1, 1], [1, 0, 1]], dtype=float)
FIVE = np.array(
    [3, 4, 6, 5, 7, 2, 4, 6, 8, 2, 1, 6, 7, 8, 4, 9, 7, 4, 6, 2, 3, 7, 5, 4, 1], dtype=float
).reshape(5, 5)
NINE = np.arange(1, 10, dtype=float).reshape(3, 3)


def test_notes_conv2d_4x4() -> None:
    out = R.conv2d(NOTES_X[None, None], NOTES_K[None, None])
    np.testing.assert_array_equal(out[0, 0], [[11, 12], [15, 23]])


def test_notes_max_pool_ceil_mode() -> None:
    np.testing.assert_array_equal(
        R.max_pool2d(NOTES_X[None, None], 3, ceil_mode=True)[0, 0], [[5, 3], [4, 5]]
    )
    np.testing.assert_array_equal(R.max_pool2d(NOTES_X[None, None], 3, ceil_mode=False)[0, 0], [[5]])


@pytest.mark.parametrize(("stride", "padding"), [(1, 1), (2, 0), (2, 1), (1, 0)])
def test_notes_5x5_with_kernel_1_to_9(stride: int, padding: int) -> None:
    expected = direct_conv2d(FIVE, NINE, stride=stride, padding=padding)
    out = R.conv2d(FIVE[None, None], NINE[None, None], stride=stride, padding=padding)[0, 0]
    np.testing.assert_array_equal(out, expected)
    assert out.shape == ((5 + 2 * padding - 3) // stride + 1,) * 2


def test_notes_5x5_known_corner_values() -> None:
    # padding 1: top-left window is [[0,0,0],[0,3,4],[0,2,4]] * [[1,2,3],[4,5,6],[7,8,9]]
    out = R.conv2d(FIVE[None, None], NINE[None, None], padding=1)[0, 0]
    assert out[0, 0] == 3 * 5 + 4 * 6 + 2 * 8 + 4 * 9
    # stride 2, no padding: windows at (0,0), (0,2), (2,0), (2,2)
    out = R.conv2d(FIVE[None, None], NINE[None, None], stride=2)[0, 0]
    assert out[0, 0] == float((FIVE[:3, :3] * NINE).sum())
    assert out[1, 1] == float((FIVE[2:, 2:] * NINE).sum())


def test_notes_d2l_edge_detector() -> None:
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    K = np.array([[1.0, -1.0]])
    Y = R.conv2d(X[None, None], K[None, None])[0, 0]
    expected = np.zeros((6, 7))
    expected[:, 1] = 1
    expected[:, 5] = -1
    np.testing.assert_array_equal(Y, expected)
    np.testing.assert_array_equal(R.conv2d(X.T[None, None], K[None, None])[0, 0], np.zeros((8, 5)))


def test_notes_max_pool_2x2() -> None:
    X = np.array([3, 4, 6, 5, 2, 4, 6, 8, 1, 6, 7, 8, 9, 7, 4, 6], dtype=float).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(R.max_pool2d(X, 2)[0, 0], [[4, 8], [9, 8]])


def test_notes_d2l_multi_input_channels() -> None:
    X = np.array([[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]], dtype=float)
    K = np.array([[[0, 1], [2, 3]], [[1, 2], [3, 4]]], dtype=float)
    np.testing.assert_array_equal(R.conv2d(X[None], K[None])[0, 0], [[56, 72], [104, 120]])
    np.testing.assert_array_equal(R.conv2d(X, K[None])[0], [[56, 72], [104, 120]])  # unbatched input


# ---------------------------------------------------------------------------------------------------------
# convolution against torch
# ---------------------------------------------------------------------------------------------------------

CONV2D_GRID = list(
    itertools.product(
        [1, 2, (2, 1)],  # stride
        [0, 1, (1, 2), "same", "valid"],  # padding
        [1, 2],  # dilation
        [1, 2],  # groups
    )
)


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"), CONV2D_GRID)
def test_conv2d_matches_torch(stride: Any, padding: Any, dilation: Any, groups: int) -> None:
    rng = rng_for("conv2d", stride, padding, dilation, groups)
    for (h, w), kernel, bias in [((5, 5), (3, 3), True), ((6, 7), (2, 3), False), ((4, 9), (1, 1), True)]:
        x = rng.standard_normal((2, 2 * groups, h, w))
        wt = rng.standard_normal((3 * groups, 2, *kernel))
        b = rng.standard_normal(3 * groups) if bias else None
        args = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pair = torch_raises_iff_reference_raises(
                lambda x=x, wt=wt, b=b, args=args: R.conv2d(x, wt, b, **args),
                lambda x=x, wt=wt, b=b, args=args: F.conv2d(T(x), T(wt), None if b is None else T(b), **args),
            )
        if pair is not None:
            assert_close(*pair)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    list(itertools.product([1, 2, 3], [0, 2, "same", "valid"], [1, 3], [1, 3])),
)
def test_conv1d_matches_torch(stride: int, padding: Any, dilation: int, groups: int) -> None:
    rng = rng_for("conv1d", stride, padding, dilation, groups)
    for length, kernel in [(9, 3), (10, 4), (6, 1)]:
        x = rng.standard_normal((2, groups, length))
        wt = rng.standard_normal((2 * groups, 1, kernel))
        b = rng.standard_normal(2 * groups)
        args = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pair = torch_raises_iff_reference_raises(
                lambda x=x, wt=wt, b=b, args=args: R.conv1d(x, wt, b, **args),
                lambda x=x, wt=wt, b=b, args=args: F.conv1d(T(x), T(wt), T(b), **args),
            )
        if pair is not None:
            assert_close(*pair)


@pytest.mark.parametrize(
    ("padding", "stride"),
    [(0, 1), (1, 1), ("same", 1), ((1, 0, 2), 1), (0, (1, 2, 1)), ((1, 0, 2), (1, 2, 1))],
)
def test_conv3d_matches_torch(padding: Any, stride: Any) -> None:
    rng = rng_for("conv3d", padding, stride)
    x = rng.standard_normal((1, 2, 4, 5, 6))
    wt = rng.standard_normal((3, 2, 2, 3, 2))
    b = rng.standard_normal(3)
    assert_close(
        R.conv3d(x, wt, b, stride=stride, padding=padding, dilation=(1, 1, 2)),
        F.conv3d(T(x), T(wt), T(b), stride=stride, padding=padding, dilation=(1, 1, 2)),
    )


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    ("padding", "stride", "dilation", "groups"),
    [
        (1, 1, 1, 1),
        ((2, 1), 2, 1, 2),
        ("same", 1, 2, 1),
        ("same", 1, (1, 2), 2),
        (0, 1, 1, 1),
        ((0, 3), 1, 1, 1),
    ],
)
def test_conv2d_padding_mode_matches_module(
    padding_mode: str, padding: Any, stride: Any, dilation: Any, groups: int
) -> None:
    rng = rng_for("pm", padding_mode, padding, stride, dilation, groups)
    kernel = (3, 2)  # even kernel width makes 'same' asymmetric
    conv = torch.nn.Conv2d(
        2 * groups,
        2 * groups,
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
        dtype=torch.float64,
    )
    x = rng.standard_normal((2, 2 * groups, 5, 6))
    with torch.no_grad():
        expected = conv(T(x))
    out = R.conv2d(
        x,
        conv.weight.detach().numpy(),
        conv.bias.detach().numpy(),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=padding_mode,
    )
    assert_close(out, expected)


@pytest.mark.parametrize("padding_mode", ["reflect", "replicate", "circular"])
def test_conv1d_padding_mode_matches_module(padding_mode: str) -> None:
    rng = rng_for("pm1", padding_mode)
    conv = torch.nn.Conv1d(3, 2, 4, padding="same", padding_mode=padding_mode, dtype=torch.float64)
    x = rng.standard_normal((2, 3, 7))
    with torch.no_grad():
        expected = conv(T(x))
    out = R.conv1d(
        x, conv.weight.detach().numpy(), conv.bias.detach().numpy(), padding="same", padding_mode=padding_mode
    )
    assert_close(out, expected)


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding"),
    list(itertools.product([1, 2, 3, (2, 1)], [0, 1, (2, 0)], [0, 1, 2])),
)
def test_conv_transpose2d_matches_torch(stride: Any, padding: Any, output_padding: int) -> None:
    rng = rng_for("convT2", stride, padding, output_padding)
    shapes = [((4, 5), (3, 3)), ((3, 3), (2, 3)), ((2, 4), (1, 1))]
    for ((h, w), kernel), dilation, groups in itertools.product(shapes, [1, 2], [1, 2]):
        x = rng.standard_normal((2, 2 * groups, h, w))
        wt = rng.standard_normal((2 * groups, 3, *kernel))
        b = rng.standard_normal(3 * groups)
        args = {
            "stride": stride,
            "padding": padding,
            "output_padding": output_padding,
            "groups": groups,
            "dilation": dilation,
        }
        pair = torch_raises_iff_reference_raises(
            lambda x=x, wt=wt, b=b, args=args: R.conv_transpose2d(x, wt, b, **args),
            lambda x=x, wt=wt, b=b, args=args: F.conv_transpose2d(T(x), T(wt), T(b), **args),
        )
        if pair is not None:
            assert_close(*pair, err_msg=f"kernel={kernel} {args}")


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation", "groups"),
    [(1, 0, 0, 1, 1), (2, 1, 1, 1, 2), (3, 2, 2, 2, 1), (1, 1, 1, 2, 2), (4, 0, 3, 1, 1)],
)
def test_conv_transpose1d_matches_torch(
    stride: int, padding: int, output_padding: int, dilation: int, groups: int
) -> None:
    rng = rng_for("convT1", stride, padding, output_padding, dilation, groups)
    x = rng.standard_normal((3, 2 * groups, 6))
    wt = rng.standard_normal((2 * groups, 2, 3))
    b = rng.standard_normal(2 * groups)
    # positional call in torch's order: stride, padding, output_padding, groups, dilation
    assert_close(
        R.conv_transpose1d(x, wt, b, stride, padding, output_padding, groups, dilation),
        F.conv_transpose1d(T(x), T(wt), T(b), stride, padding, output_padding, groups, dilation),
    )


def test_conv_transpose3d_matches_torch() -> None:
    rng = rng_for("convT3")
    x = rng.standard_normal((1, 2, 3, 4, 2))
    wt = rng.standard_normal((2, 3, 2, 3, 2))
    args = {"stride": (2, 1, 2), "padding": (1, 0, 1), "output_padding": (1, 0, 1)}
    assert_close(R.conv_transpose3d(x, wt, **args), F.conv_transpose3d(T(x), T(wt), **args))


# ---------------------------------------------------------------------------------------------------------
# pooling against torch
# ---------------------------------------------------------------------------------------------------------

POOL_SIZES = [(5, 5), (6, 7), (7, 8), (8, 8), (4, 3)]


def tie_heavy(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Small integers so that windows are full of ties (exercises torch's first-maximum rule)."""
    return rng.integers(-2, 3, size=shape).astype(np.float64)


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


@pytest.mark.parametrize(
    "output_size", [1, 2, 3, (4, 5), (None, 3), (7, None), 8, (10, 3), (1, 9), [2, 2], (None, None)]
)
def test_adaptive_pools_match_torch(output_size: Any) -> None:
    rng = rng_for("adaptive", output_size)
    for size in [(5, 7), (8, 8), (3, 10)]:
        x = tie_heavy(rng, (2, 3, *size))
        assert_close(R.adaptive_avg_pool2d(x, output_size), F.adaptive_avg_pool2d(T(x), output_size))
        out, idx = R.adaptive_max_pool2d(x, output_size, return_indices=True)
        t_out, t_idx = F.adaptive_max_pool2d(T(x), output_size, return_indices=True)
        assert_close(out, t_out)
        np.testing.assert_array_equal(idx, t_idx.numpy())
        assert_close(R.adaptive_max_pool2d(x[0], output_size), F.adaptive_max_pool2d(T(x[0]), output_size))


@pytest.mark.parametrize("output_size", [1, 3, 4, 7, 12])
def test_adaptive_pools_1d_3d_match_torch(output_size: int) -> None:
    rng = rng_for("adaptive13", output_size)
    x = tie_heavy(rng, (2, 3, 7))
    assert_close(R.adaptive_avg_pool1d(x, output_size), F.adaptive_avg_pool1d(T(x), output_size))
    out, idx = R.adaptive_max_pool1d(x, output_size, return_indices=True)
    t_out, t_idx = F.adaptive_max_pool1d(T(x), output_size, return_indices=True)
    assert_close(out, t_out)
    np.testing.assert_array_equal(idx, t_idx.numpy())
    y = tie_heavy(rng, (1, 2, 4, 5, 6))
    size3 = (output_size % 4 + 1, None, output_size)
    assert_close(R.adaptive_avg_pool3d(y, size3), F.adaptive_avg_pool3d(T(y), size3))
    out, idx = R.adaptive_max_pool3d(y, size3, return_indices=True)
    t_out, t_idx = F.adaptive_max_pool3d(T(y), size3, return_indices=True)
    assert_close(out, t_out)
    np.testing.assert_array_equal(idx, t_idx.numpy())


def test_unbatched_pools_match_torch() -> None:
    x = tie_heavy(np.random.default_rng(3), (3, 6, 7))
    assert_close(R.max_pool2d(x, 3, 2, 1, ceil_mode=True), F.max_pool2d(T(x), 3, 2, 1, ceil_mode=True))
    assert_close(R.avg_pool2d(x, 3, 2, 1, ceil_mode=True), F.avg_pool2d(T(x), 3, 2, 1, ceil_mode=True))
    assert_close(R.max_pool1d(x[0], 2), F.max_pool1d(T(x[0]), 2))


# ---------------------------------------------------------------------------------------------------------
# batch norm, linear, activations, reshapes, pad, interpolate
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (2, 3, 4, 5), (2, 3, 2, 3, 4)])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_batch_norm_matches_torch(
    shape: tuple[int, ...], training: bool, affine: bool, momentum: float
) -> None:
    rng = rng_for("bn", shape, training, affine, momentum)
    x = rng.standard_normal(shape) * 3 + 1
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    w, b = (rng.standard_normal(3), rng.standard_normal(3)) if affine else (None, None)
    t_rm, t_rv = T(rm.copy()), T(rv.copy())
    expected = F.batch_norm(
        T(x), t_rm, t_rv, None if w is None else T(w), None if b is None else T(b), training, momentum, 1e-3
    )
    out = R.batch_norm(x, rm, rv, w, b, training, momentum, 1e-3)
    assert_close(out, expected)
    assert_close(rm, t_rm)  # running stats updated in place (unbiased variance) when training
    assert_close(rv, t_rv)


def test_batch_norm_training_without_running_stats_and_errors() -> None:
    x = np.random.default_rng(0).standard_normal((3, 2, 4))
    assert_close(R.batch_norm(x, None, None, training=True), F.batch_norm(T(x), None, None, training=True))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        R.batch_norm(x[:1, :, :1], None, None, training=True)
    with pytest.raises(ValueError):
        R.batch_norm(x, None, None, training=False)


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_matches_torch(shape: tuple[int, ...], bias: bool) -> None:
    rng = rng_for("linear", shape, bias)
    x, w, b = (
        rng.standard_normal(shape),
        rng.standard_normal((4, 5)),
        rng.standard_normal(4) if bias else None,
    )
    assert_close(R.linear(x, w, b), F.linear(T(x), T(w), None if b is None else T(b)))


EXTREMES = np.array(
    [-1000.0, -800.0, -30.0, -1.0, -0.0, 0.0, 1e-300, 0.5, 30.0, 800.0, 1000.0, np.inf, -np.inf]
)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activations_match_torch(name: str) -> None:
    x = np.concatenate([EXTREMES, np.random.default_rng(1).standard_normal(50) * 5, [np.nan]])
    assert_close(R.REFERENCES[name](x), getattr(F, name)(T(x)), equal_nan=True)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize(
    ("shape", "dim"), [((7,), 0), ((3, 7), -1), ((3, 7), 0), ((2, 3, 4), 1), ((2, 3, 4, 5), 1)]
)
def test_softmax_family_matches_torch(name: str, shape: tuple[int, ...], dim: int) -> None:
    x = np.random.default_rng(2).standard_normal(shape) * 10
    x.flat[0] = 1000.0  # stability: no overflow
    x.flat[-1] = -1000.0
    assert_close(R.REFERENCES[name](x, dim), getattr(F, name)(T(x), dim))


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4), (2, 3, 4, 5)])
def test_softmax_implicit_dim_follows_torch_legacy_rule(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(4).standard_normal(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_close(R.softmax(x), F.softmax(T(x)))
        assert_close(R.log_softmax(x), F.log_softmax(T(x)))


@pytest.mark.parametrize(("start", "end"), [(0, -1), (1, -1), (1, 2), (-2, -1), (2, 2), (0, 0)])
def test_flatten_matches_torch(start: int, end: int) -> None:
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(R.flatten(x, start, end), torch.flatten(T(x), start, end).numpy())
    assert R.flatten(np.float64(3.0)).shape == torch.flatten(torch.tensor(3.0)).shape


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", [(1, 2), (0, 3, 2, 1), (2, 0, 0, 2), (1, 1, 1, 1, 1, 1)])
def test_pad_matches_torch(mode: str, pad: tuple[int, ...]) -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 5))
    if mode != "constant":  # torch pads k dims of a (k+1)-D or (k+2)-D input only
        x = x.reshape((-1, *x.shape[-(len(pad) // 2) :]))
    assert_close(R.pad(x, pad, mode), F.pad(T(x), pad, mode))
    if mode != "constant":
        with pytest.raises((NotImplementedError, RuntimeError, AssertionError)):  # varies by torch version
            F.pad(T(x[None, None]), pad, mode)
        with pytest.raises(ValueError):
            R.pad(x[None, None], pad, mode)


def test_pad_constant_value_and_negative_crop() -> None:
    x = np.random.default_rng(6).standard_normal((2, 3, 4))
    for pad in [(1, -2), (-1, 0, 2, -1), (0, 0, -1, -1, 1, 0)]:
        assert_close(R.pad(x, pad, value=2.5), F.pad(T(x), pad, value=2.5))
    with pytest.raises(ValueError):
        R.pad(x, (4, 0), mode="reflect")


INTERP_IN = [(5, 7), (4, 4), (10, 3)]
INTERP_ARGS: list[dict[str, Any]] = [
    {"size": (10, 14)},
    {"size": (3, 4)},
    {"size": (7, 5)},
    {"size": 1},
    {"size": (13, 3)},
    {"scale_factor": 2},
    {"scale_factor": 1.5},
    {"scale_factor": 0.5},
    {"scale_factor": (2.5, 0.7)},
    {"scale_factor": 1.05},  # floor(in * 1.05) == in for small in: torch copies (the out == in shortcut)
    {"scale_factor": 2.1},
    {"scale_factor": 1.7, "recompute_scale_factor": True},
    {"scale_factor": (0.3, 3.3)},
]


@pytest.mark.parametrize(
    ("mode", "align_corners"),
    [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True)],
)
@pytest.mark.parametrize("args", INTERP_ARGS, ids=repr)
def test_interpolate_2d_matches_torch(mode: str, align_corners: bool | None, args: dict[str, Any]) -> None:
    rng = rng_for("interp", mode, align_corners, repr(args))
    for size in INTERP_IN:
        x = rng.standard_normal((2, 2, *size))
        try:
            expected = F.interpolate(T(x), mode=mode, align_corners=align_corners, **args)
        except (RuntimeError, ValueError):
            continue  # e.g. an output size of 0
        assert_close(R.interpolate(x, mode=mode, align_corners=align_corners, **args), expected)


@pytest.mark.parametrize(
    ("mode", "align_corners", "shape", "args"),
    [
        ("linear", False, (2, 3, 7), {"size": 11}),
        ("linear", True, (2, 3, 7), {"scale_factor": 0.6}),
        ("nearest", None, (2, 3, 7), {"scale_factor": 2.7}),
        ("trilinear", False, (1, 2, 3, 4, 5), {"size": (5, 3, 8)}),
        ("trilinear", True, (1, 2, 3, 4, 5), {"scale_factor": 1.5}),
        ("nearest", None, (1, 2, 3, 4, 5), {"size": (6, 2, 7)}),
    ],
)
def test_interpolate_1d_3d_matches_torch(
    mode: str, align_corners: bool | None, shape: Any, args: Any
) -> None:
    x = np.random.default_rng(7).standard_normal(shape)
    assert_close(
        R.interpolate(x, mode=mode, align_corners=align_corners, **args),
        F.interpolate(T(x), mode=mode, align_corners=align_corners, **args),
    )


def test_interpolate_nearest_uses_float32_scale_like_torch() -> None:
    # For in=7, out=20 (not 2*in), torch computes floorf(dst * float32(7/20)); a float64 floor(dst*in/out)
    # differs at dst=20*k/7 boundaries only by rounding: check a range of sizes exhaustively against torch.
    rng = np.random.default_rng(8)
    for n_in in range(1, 12):
        for n_out in range(1, 30):
            x = rng.standard_normal((1, 1, n_in))
            np.testing.assert_array_equal(
                R.interpolate(x, size=n_out),
                F.interpolate(T(x), size=n_out).numpy(),
                err_msg=f"{n_in}->{n_out}",
            )


def test_interpolate_rejects_bad_arguments() -> None:
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError):
        R.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError):
        R.interpolate(x, size=2, align_corners=True)
    with pytest.raises(ValueError):
        R.interpolate(x, size=2, mode="bicubic")
    with pytest.raises(ValueError):
        R.interpolate(x[0], size=2, mode="bilinear")


# ---------------------------------------------------------------------------------------------------------
# seeded random geometries: combinations the grids above do not enumerate
# ---------------------------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, options: list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


def _random_case(op: str, rng: np.random.Generator) -> tuple[Callable[[], Any], Callable[[], Any]]:
    pair = lambda lo, hi: (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))  # noqa: E731
    size = pair(1, 10)
    if op in ("conv2d", "conv_transpose2d"):
        groups = _pick(rng, [1, 1, 2, 3])
        cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        kernel = pair(1, 5)
        x = rng.standard_normal((int(rng.integers(1, 3)), cin, *size))
        b = rng.standard_normal(cout) if rng.random() < 0.5 else None
        tb = None if b is None else T(b)
        if op == "conv2d":
            w = rng.standard_normal((cout, cin // groups, *kernel))
            args: dict[str, Any] = {
                "stride": _pick(rng, [1, 2, pair(1, 4)]),
                "padding": _pick(rng, [0, 1, pair(0, 3), "same", "valid"]),
                "dilation": _pick(rng, [1, 2, pair(1, 3)]),
                "groups": groups,
            }
            mode = _pick(rng, ["zeros", "zeros", "reflect", "replicate", "circular"])
            if mode == "zeros":
                return (lambda: R.conv2d(x, w, b, **args)), (lambda: F.conv2d(T(x), T(w), tb, **args))

            def module() -> torch.Tensor:  # built lazily: the constructor itself rejects bad geometry
                conv = torch.nn.Conv2d(cin, cout, kernel, bias=False, padding_mode=mode, **args)
                return conv._conv_forward(T(x), T(w), tb)

            return (lambda: R.conv2d(x, w, b, padding_mode=mode, **args)), module
        w = rng.standard_normal((cin, cout // groups, *kernel))
        args = {
            "stride": _pick(rng, [1, 2, pair(1, 4)]),
            "padding": _pick(rng, [0, 1, pair(0, 3)]),
            "output_padding": _pick(rng, [0, 1, pair(0, 3)]),
            "groups": groups,
            "dilation": _pick(rng, [1, 2, pair(1, 3)]),
        }
        return (lambda: R.conv_transpose2d(x, w, b, **args)), (
            lambda: F.conv_transpose2d(T(x), T(w), tb, **args)
        )
    x = tie_heavy(rng, (2, 2, *size))
    args = {
        "kernel_size": _pick(rng, [1, 2, 3, pair(1, 5)]),
        "stride": _pick(rng, [None, 1, 2, 3, pair(1, 4)]),
        "padding": _pick(rng, [0, 1, 2, pair(0, 3)]),
        "ceil_mode": bool(rng.random() < 0.5),
    }
    if op == "max_pool2d":
        args["dilation"] = _pick(rng, [1, 2, pair(1, 4)])
        return (
            lambda: R.max_pool2d(x, return_indices=True, **args),
            lambda: F.max_pool2d(T(x), return_indices=True, **args),
        )
    args["count_include_pad"] = bool(rng.random() < 0.5)
    args["divisor_override"] = _pick(rng, [None, None, 1, 5])
    return (lambda: R.avg_pool2d(x, **args)), (lambda: F.avg_pool2d(T(x), **args))


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d"])
def test_random_geometries_match_torch(op: str) -> None:
    rng = rng_for("fuzz", op)
    compared = 0
    for _ in range(250):
        ours, theirs = _random_case(op, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = torch_raises_iff_reference_raises(ours, theirs)
        if result is None:
            continue
        compared += 1
        out, expected = result
        if isinstance(expected, tuple):
            assert_close(out[0], expected[0])
            np.testing.assert_array_equal(out[1], expected[1].numpy())
        else:
            assert_close(out, expected)
    assert compared >= 60, compared  # a fair share of random configurations are valid


# ---------------------------------------------------------------------------------------------------------
# gradients against torch.autograd
# ---------------------------------------------------------------------------------------------------------


def autograd(
    fn: Callable[..., torch.Tensor], grad_out_rng: np.random.Generator, inputs: dict[str, Any], **args: Any
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run fn on float64 leaf tensors (None stays None); return the upstream gradient and the leaf grads."""
    leaves = {k: None if v is None else T(v).requires_grad_(True) for k, v in inputs.items()}
    out = fn(*leaves.values(), **args)
    out = out[0] if isinstance(out, tuple) else out
    go = grad_out_rng.standard_normal(tuple(out.shape))
    out.backward(T(go))
    return go, {k: v.grad.numpy() for k, v in leaves.items() if v is not None}


def assert_grads(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> None:
    assert set(ours) == set(theirs), (set(ours), set(theirs))
    for key, value in theirs.items():
        assert_close(ours[key], value, err_msg=key)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups", "padding_mode", "bias"),
    [
        (1, 0, 1, 1, "zeros", True),
        (2, 1, 1, 1, "zeros", False),
        ((2, 1), (1, 2), (1, 2), 2, "zeros", True),
        (1, "same", 2, 2, "zeros", True),
        (1, "same", 1, 1, "reflect", True),
        (3, 2, 1, 1, "replicate", False),
        (2, (1, 2), 1, 2, "circular", True),
        (1, "valid", 1, 1, "zeros", True),
    ],
)
def test_conv2d_gradients_match_autograd(
    stride: Any, padding: Any, dilation: Any, groups: int, padding_mode: str, bias: bool
) -> None:
    rng = rng_for("gconv2", stride, padding, dilation, groups, padding_mode, bias)
    x = rng.standard_normal((2, 2 * groups, 7, 6))
    w = rng.standard_normal((2 * groups, 2, 3, 2))
    b = rng.standard_normal(2 * groups) if bias else None
    args = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}

    def module(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, **kw: Any) -> torch.Tensor:
        conv = torch.nn.Conv2d(2 * groups, 2 * groups, (3, 2), bias=False, padding_mode=padding_mode, **kw)
        return conv._conv_forward(x, w, b)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        go, theirs = autograd(module, rng, {"x": x, "w": w, "b": b}, **args)
    ours = R.GRADIENTS["conv2d"](go, x, w, b, padding_mode=padding_mode, **args)
    assert_grads(
        ours, {"input": theirs["x"], "weight": theirs["w"], **({"bias": theirs["b"]} if bias else {})}
    )


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"), [(1, 0, 1, 1), (2, 2, 2, 2), (1, "same", 1, 1), (3, 1, 1, 3)]
)
def test_conv1d_gradients_match_autograd(stride: int, padding: Any, dilation: int, groups: int) -> None:
    rng = rng_for("gconv1", stride, padding, dilation, groups)
    x, w, b = (
        rng.standard_normal((2, groups, 11)),
        rng.standard_normal((2 * groups, 1, 4)),
        rng.standard_normal(2 * groups),
    )
    args = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        go, theirs = autograd(F.conv1d, rng, {"x": x, "w": w, "b": b}, **args)
    assert_grads(
        R.GRADIENTS["conv1d"](go, x, w, b, **args),
        {"input": theirs["x"], "weight": theirs["w"], "bias": theirs["b"]},
    )


def test_conv3d_gradients_match_autograd() -> None:
    rng = rng_for("gconv3")
    x, w = rng.standard_normal((1, 2, 4, 5, 3)), rng.standard_normal((2, 1, 2, 3, 2))
    args = {"stride": (1, 2, 1), "padding": 1, "groups": 2}
    go, theirs = autograd(F.conv3d, rng, {"x": x, "w": w}, **args)
    assert_grads(R.conv3d_backward(go, x, w, **args), {"input": theirs["x"], "weight": theirs["w"]})


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation", "groups", "bias"),
    [
        (1, 0, 0, 1, 1, True),
        (2, 1, 1, 1, 2, True),
        ((3, 2), (2, 0), (1, 1), 1, 1, False),
        (2, 1, 1, 2, 2, True),
    ],
)
def test_conv_transpose2d_gradients_match_autograd(
    stride: Any, padding: Any, output_padding: Any, dilation: int, groups: int, bias: bool
) -> None:
    rng = rng_for("gconvT2", stride, padding, output_padding, dilation, groups, bias)
    x = rng.standard_normal((2, 2 * groups, 4, 3))
    w = rng.standard_normal((2 * groups, 3, 3, 2))
    b = rng.standard_normal(3 * groups) if bias else None
    args = {
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "groups": groups,
        "dilation": dilation,
    }
    go, theirs = autograd(F.conv_transpose2d, rng, {"x": x, "w": w, "b": b}, **args)
    ours = R.GRADIENTS["conv_transpose2d"](go, x, w, b, **args)
    assert_grads(
        ours, {"input": theirs["x"], "weight": theirs["w"], **({"bias": theirs["b"]} if bias else {})}
    )


def test_conv_transpose1d_gradients_match_autograd() -> None:
    rng = rng_for("gconvT1")
    x, w, b = rng.standard_normal((2, 4, 5)), rng.standard_normal((4, 2, 3)), rng.standard_normal(4)
    args = {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2, "dilation": 1}
    go, theirs = autograd(F.conv_transpose1d, rng, {"x": x, "w": w, "b": b}, **args)
    assert_grads(
        R.GRADIENTS["conv_transpose1d"](go, x, w, b, **args),
        {"input": theirs["x"], "weight": theirs["w"], "bias": theirs["b"]},
    )


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
def test_linear_gradients_match_autograd(shape: tuple[int, ...]) -> None:
    rng = rng_for("glinear", shape)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((4, 5)), rng.standard_normal(4)
    go, theirs = autograd(F.linear, rng, {"x": x, "w": w, "b": b})
    assert_grads(
        R.GRADIENTS["linear"](go, x, w, b), {"input": theirs["x"], "weight": theirs["w"], "bias": theirs["b"]}
    )


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


@pytest.mark.parametrize("output_size", [1, 3, (4, 5), (None, 2), (9, 2)])
def test_adaptive_pool_gradients_match_autograd(output_size: Any) -> None:
    rng = rng_for("gadaptive", output_size)
    x = tie_heavy(rng, (2, 2, 5, 7))
    go, theirs = autograd(F.adaptive_avg_pool2d, rng, {"x": x}, output_size=output_size)
    assert_grads(R.GRADIENTS["adaptive_avg_pool2d"](go, x, output_size), {"input": theirs["x"]})
    go, theirs = autograd(F.adaptive_max_pool2d, rng, {"x": x}, output_size=output_size)
    assert_grads(R.GRADIENTS["adaptive_max_pool2d"](go, x, output_size), {"input": theirs["x"]})
    x1 = x[:, :, 0]
    size1 = 3 if output_size is None or not isinstance(output_size, int) else output_size
    go, theirs = autograd(F.adaptive_avg_pool1d, rng, {"x": x1}, output_size=size1)
    assert_grads(R.GRADIENTS["adaptive_avg_pool1d"](go, x1, size1), {"input": theirs["x"]})
    go, theirs = autograd(F.adaptive_max_pool1d, rng, {"x": x1}, output_size=size1)
    assert_grads(R.GRADIENTS["adaptive_max_pool1d"](go, x1, size1), {"input": theirs["x"]})


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_gradients_match_autograd(shape: tuple[int, ...], training: bool, affine: bool) -> None:
    rng = rng_for("gbn", shape, training, affine)
    x = rng.standard_normal(shape) * 2 + 0.5
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    w, b = (rng.standard_normal(3), rng.standard_normal(3)) if affine else (None, None)
    rm_before, rv_before = rm.copy(), rv.copy()

    def fn(x: torch.Tensor, w: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor:
        return F.batch_norm(x, T(rm.copy()), T(rv.copy()), w, b, training=training, eps=1e-4)

    go, theirs = autograd(fn, rng, {"x": x, "w": w, "b": b})
    ours = R.GRADIENTS["batch_norm"](go, x, rm, rv, w, b, training=training, eps=1e-4)
    expected = {"input": theirs["x"], **({"weight": theirs["w"], "bias": theirs["b"]} if affine else {})}
    assert_grads(ours, expected)
    np.testing.assert_array_equal(rm, rm_before)  # the backward never touches the running stats
    np.testing.assert_array_equal(rv, rv_before)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_gradients_match_autograd(name: str) -> None:
    rng = rng_for("gact", name)
    x = np.concatenate([rng.standard_normal(40) * 4, [0.0, -0.0, 30.0, -30.0]])
    go, theirs = autograd(getattr(F, name), rng, {"x": x})
    assert_grads(R.GRADIENTS[name](go, x), {"input": theirs["x"]})


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_gradients_match_autograd(name: str, dim: int) -> None:
    rng = rng_for("gsoft", name, dim)
    x = rng.standard_normal((3, 4, 5)) * 3
    go, theirs = autograd(getattr(F, name), rng, {"x": x}, dim=dim)
    assert_grads(R.GRADIENTS[name](go, x, dim), {"input": theirs["x"]})


# ---------------------------------------------------------------------------------------------------------
# registry, signatures, independence from torch
# ---------------------------------------------------------------------------------------------------------


def test_registries_cover_the_required_ops() -> None:
    required = {
        "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d",
        "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "batch_norm", "linear", "relu", "sigmoid",
        "tanh", "softmax", "log_softmax", "flatten", "interpolate", "pad",
    }  # fmt: skip
    assert required <= set(R.REFERENCES)
    assert {
        "conv1d",
        "conv2d",
        "conv_transpose2d",
        "linear",
        "max_pool2d",
        "avg_pool2d",
        "batch_norm",
    } <= set(R.GRADIENTS)
    assert set(R.__all__) >= {f.__name__ for f in R.REFERENCES.values()} | {
        f.__name__ for f in R.GRADIENTS.values()
    }


def _torch_signature(name: str) -> inspect.Signature | None:
    # max pools are boolean_dispatch wrappers (*args, **kwargs): their _with_indices twin has the signature
    fn = getattr(F, f"{name}_with_indices", None) or getattr(F, name, None) or getattr(torch, name)
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


# Parameters of torch's functionals that the reference does not model (torch internals, dtype casts).
IGNORED_TORCH_PARAMS = {"_stacklevel", "dtype", "antialias", "inplace"}

# Documented defaults of the functionals that are C++ builtins (inspect.signature cannot read them).
_CONV_T_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1}
TORCH_DOC_DEFAULTS = {
    "conv1d": {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    "conv2d": {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    "conv3d": {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    "linear": {"bias": None},
    "flatten": {"start_dim": 0, "end_dim": -1},
    "conv_transpose1d": _CONV_T_DEFAULTS,
    "conv_transpose2d": _CONV_T_DEFAULTS,
    "avg_pool1d": {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True},
    "avg_pool2d": {
        "stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(R.REFERENCES))
def test_reference_signature_mirrors_torch(name: str) -> None:
    ours = inspect.signature(R.REFERENCES[name])
    sig = _torch_signature(name)
    if sig is not None:
        params = [
            p
            for p in sig.parameters.values()
            if p.name not in IGNORED_TORCH_PARAMS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert list(ours.parameters)[: len(positional)] == positional
        for p in params:
            assert p.name in ours.parameters, p.name
            if p.default is not inspect.Parameter.empty and p.name != "value":
                assert ours.parameters[p.name].default == p.default, p.name
    for pname, default in TORCH_DOC_DEFAULTS.get(name, {}).items():
        assert ours.parameters[pname].default == default, pname
    if name.startswith("conv_transpose"):  # groups before dilation, as in torch
        order = list(ours.parameters)
        assert order.index("groups") < order.index("dilation")


def test_reference_and_arithmetic_do_not_import_torch() -> None:
    code = "import sys, cnnbench.numerics.reference, cnnbench.ops.arithmetic; assert 'torch' not in sys.modules, 'torch'"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    for module in ("numerics/reference.py", "ops/arithmetic.py"):
        source = (REPO / "cnnbench" / module).read_text()
        assert "import torch" not in source and "from torch" not in source


def test_reference_rejects_what_torch_rejects() -> None:
    x = np.zeros((1, 2, 5, 5))
    w = np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match="strided"):
        R.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError):
        R.conv2d(x, np.zeros((2, 2, 6, 3)))  # kernel larger than input
    with pytest.raises(ValueError):
        R.conv2d(x, w, groups=2)  # channel mismatch
    with pytest.raises(ValueError, match="half"):
        R.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError):
        R.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError):
        R.conv_transpose2d(x, w, stride=2, output_padding=2)


def test_outputs_are_float64_and_inputs_untouched() -> None:
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    before = x.copy()
    for out in [
        R.conv2d(x, np.ones((1, 2, 2, 2))),
        R.avg_pool2d(x, 2),
        R.max_pool2d(x, 2),
        R.interpolate(x, 3),
    ]:
        assert out.dtype == np.float64
    np.testing.assert_array_equal(x, before)
    assert math.isclose(float(R.max_pool2d(x, 4)[0, 0, 0, 0]), 15.0)

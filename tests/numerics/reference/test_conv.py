"""Tests pinning cnnbench.numerics.reference.conv (conv, conv_transpose) to hand-computed values and torch."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
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
    torch_raises_iff_reference_raises,
)

from cnnbench.numerics import reference as R

# torch warns (once) that an asymmetric 'same' padding copies the input: expected, and exercised on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


# ---------------------------------------------------------------------------------------------------------
# hand-computed values from the study notes
# ---------------------------------------------------------------------------------------------------------


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


NOTES_K = np.array([[0, 1, 0], [2, 1, 1], [1, 0, 1]], dtype=float)


FIVE = np.array(
    [3, 4, 6, 5, 7, 2, 4, 6, 8, 2, 1, 6, 7, 8, 4, 9, 7, 4, 6, 2, 3, 7, 5, 4, 1], dtype=float
).reshape(5, 5)


NINE = np.arange(1, 10, dtype=float).reshape(3, 3)


def test_notes_conv2d_4x4() -> None:
    out = R.conv2d(NOTES_X[None, None], NOTES_K[None, None])
    np.testing.assert_array_equal(out[0, 0], [[11, 12], [15, 23]])


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
# seeded random geometries: combinations the grids above do not enumerate
# ---------------------------------------------------------------------------------------------------------


def _random_case(op: str, rng: np.random.Generator) -> tuple[Callable[[], Any], Callable[[], Any]]:
    pair = lambda lo, hi: (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))  # noqa: E731
    size = pair(1, 10)
    groups = pick(rng, [1, 1, 2, 3])
    cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kernel = pair(1, 5)
    x = rng.standard_normal((int(rng.integers(1, 3)), cin, *size))
    b = rng.standard_normal(cout) if rng.random() < 0.5 else None
    tb = None if b is None else T(b)
    if op == "conv2d":
        w = rng.standard_normal((cout, cin // groups, *kernel))
        args: dict[str, Any] = {
            "stride": pick(rng, [1, 2, pair(1, 4)]),
            "padding": pick(rng, [0, 1, pair(0, 3), "same", "valid"]),
            "dilation": pick(rng, [1, 2, pair(1, 3)]),
            "groups": groups,
        }
        mode = pick(rng, ["zeros", "zeros", "reflect", "replicate", "circular"])
        if mode == "zeros":
            return (lambda: R.conv2d(x, w, b, **args)), (lambda: F.conv2d(T(x), T(w), tb, **args))

        def module() -> torch.Tensor:  # built lazily: the constructor itself rejects bad geometry
            conv = torch.nn.Conv2d(cin, cout, kernel, bias=False, padding_mode=mode, **args)
            return conv._conv_forward(T(x), T(w), tb)

        return (lambda: R.conv2d(x, w, b, padding_mode=mode, **args)), module
    w = rng.standard_normal((cin, cout // groups, *kernel))
    args = {
        "stride": pick(rng, [1, 2, pair(1, 4)]),
        "padding": pick(rng, [0, 1, pair(0, 3)]),
        "output_padding": pick(rng, [0, 1, pair(0, 3)]),
        "groups": groups,
        "dilation": pick(rng, [1, 2, pair(1, 3)]),
    }
    return (lambda: R.conv_transpose2d(x, w, b, **args)), (lambda: F.conv_transpose2d(T(x), T(w), tb, **args))


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_random_geometries_match_torch(op: str) -> None:
    check_random_geometries(op, _random_case)


# ---------------------------------------------------------------------------------------------------------
# gradients against torch.autograd
# ---------------------------------------------------------------------------------------------------------


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

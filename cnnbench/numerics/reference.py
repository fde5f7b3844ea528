"""Independent float64 NumPy reference implementations (and gradients) of PyTorch CNN layer ops."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from functools import reduce
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from cnnbench.ops.arithmetic import (
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
    same_padding,
)

__all__ = [
    "GRADIENTS",
    "REFERENCES",
    "AdaptiveSize",
    "BoolArray",
    "FloatArray",
    "IntArray",
    "Size",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool1d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool1d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "adaptive_max_pool3d",
    "avg_pool1d",
    "avg_pool1d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool3d",
    "avg_pool3d_backward",
    "batch_norm",
    "batch_norm_backward",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "conv3d",
    "conv3d_backward",
    "conv_transpose1d",
    "conv_transpose1d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose3d",
    "conv_transpose3d_backward",
    "flatten",
    "interpolate",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool3d",
    "max_pool3d_backward",
    "pad",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_backward",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Size = int | Sequence[int]
"""An int (same value in every spatial dim) or one int per spatial dim, like torch's _size_any_t."""
AdaptiveSize = int | Sequence[int | None] | None
"""An adaptive pool's output_size: an int or one entry per spatial dim; None keeps that input size."""

_PAD_MODES = ("constant", "reflect", "replicate", "circular")
_PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


# ---------------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------------


def _f64(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _ntuple(value: Size, n: int, name: str) -> tuple[int, ...]:
    """Expand an int or a 1-or-n sequence into an n-tuple of ints (torch's _single/_pair/_triple)."""
    if not isinstance(value, (Sequence, np.ndarray)):
        return (operator.index(value),) * n
    items = tuple(operator.index(v) for v in value)
    if len(items) == 1:
        return items * n
    if len(items) != n:
        raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
    return items


def _batched(x: FloatArray, nd: int, op: str) -> tuple[FloatArray, bool]:
    """Accept (N, C, *spatial) or unbatched (C, *spatial) like torch; return the batched view and the flag."""
    if x.ndim == nd + 2:
        return x, False
    if x.ndim == nd + 1:
        return x[None], True
    raise ValueError(
        f"{op} expects a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got shape {x.shape}"
    )


def _tap_slices(
    tap: tuple[int, ...], stride: Sequence[int], dilation: Sequence[int], out_sizes: Sequence[int]
) -> tuple[slice, ...]:
    """For kernel tap `tap`, the strided slice (one per spatial dim) of the inputs that it multiplies."""
    return tuple(
        slice(t * d, t * d + s * (o - 1) + 1, s)
        for t, s, d, o in zip(tap, stride, dilation, out_sizes, strict=True)
    )


def _trailing(parts: Iterable[Any]) -> tuple[Any, ...]:
    """An index tuple that applies `parts` to the trailing dims: (..., *parts)."""
    return (Ellipsis, *parts)


def _outer(vectors: Sequence[npt.NDArray[Any]], combine: Callable[[Any, Any], Any]) -> npt.NDArray[Any]:
    """Combine per-dimension 1-D arrays into an nd grid (outer sum / product / and)."""
    nd = len(vectors)
    shaped = [np.reshape(v, [-1 if i == j else 1 for j in range(nd)]) for i, v in enumerate(vectors)]
    return np.asarray(reduce(combine, shaped))


def _plane_strides(sizes: Sequence[int]) -> list[int]:
    """Row-major strides of a flattened spatial plane (torch's pooling indices are flat into it)."""
    return [math.prod(sizes[i + 1 :]) for i in range(len(sizes))]


# ---------------------------------------------------------------------------------------------------------
# padding (F.pad)
# ---------------------------------------------------------------------------------------------------------


def _pad_index(n: int, left: int, right: int, mode: str) -> tuple[IntArray, BoolArray]:
    """Source index along one axis for each padded position, and whether it is a real (non-constant) value."""
    j = np.arange(-left, n + right, dtype=np.int64)
    if mode == "constant":
        valid = (j >= 0) & (j < n)
        return np.clip(j, 0, max(n - 1, 0)), valid
    if n == 0:
        raise ValueError(f"{mode} padding needs a non-empty dimension")
    if mode == "replicate":
        idx = np.clip(j, 0, n - 1)
    elif mode == "reflect":
        if left >= n or right >= n:
            raise ValueError(
                f"reflect padding ({left}, {right}) must be smaller than the input dimension {n}"
            )
        idx = np.abs(j)
        idx = np.where(idx > n - 1, 2 * (n - 1) - idx, idx)
    elif mode == "circular":
        if left > n or right > n:
            raise ValueError(
                f"circular padding ({left}, {right}) wraps around more than once for dimension {n}"
            )
        idx = np.mod(j, n)
    else:
        raise ValueError(f"unknown padding mode {mode!r}; expected one of {_PAD_MODES}")
    return idx.astype(np.int64), np.ones(j.shape, dtype=np.bool_)


def _pad_pairs(pad_spec: Sequence[int], ndim: int) -> list[tuple[int, int]]:
    """F.pad's flat (last_left, last_right, prev_left, prev_right, ...) as per-axis (left, right) pairs."""
    values = [operator.index(v) for v in pad_spec]
    if len(values) % 2:
        raise ValueError(f"padding length must be divisible by 2, got {len(values)}")
    if len(values) // 2 > ndim:
        raise ValueError(f"padding length {len(values)} is too large for a {ndim}-D input")
    pairs = [(0, 0)] * ndim
    for i in range(len(values) // 2):
        pairs[ndim - 1 - i] = (values[2 * i], values[2 * i + 1])
    return pairs


def _apply_pad(x: FloatArray, pairs: Sequence[tuple[int, int]], mode: str, value: float) -> FloatArray:
    out = x
    for axis, (left, right) in enumerate(pairs):
        if left == 0 and right == 0:
            continue
        n = out.shape[axis]
        if n + left + right < 0:
            raise ValueError(
                f"padding ({left}, {right}) gives a negative size for dimension {axis} of size {n}"
            )
        idx, valid = _pad_index(n, left, right, mode)
        if n == 0:
            shape = list(out.shape)
            shape[axis] = idx.size
            out = np.full(shape, value, dtype=np.float64)
            continue
        taken = np.take(out, idx, axis=axis)
        if not valid.all():
            shape = [1] * out.ndim
            shape[axis] = -1
            taken = np.where(valid.reshape(shape), taken, value)
        out = taken
    return out


def _pad_backward(
    grad: FloatArray, input_shape: Sequence[int], pairs: Sequence[tuple[int, int]], mode: str
) -> FloatArray:
    """Vector-Jacobian product of _apply_pad: scatter-add each padded position back to its source."""
    g = grad
    for axis in reversed(range(len(pairs))):
        left, right = pairs[axis]
        if left == 0 and right == 0:
            continue
        n = input_shape[axis]
        idx, valid = _pad_index(n, left, right, mode)
        moved = np.moveaxis(g, axis, 0)
        acc = np.zeros((n, *moved.shape[1:]), dtype=np.float64)
        if mode == "constant":
            acc[idx[valid]] = moved[valid]
        else:
            np.add.at(acc, idx, moved)
        g = np.moveaxis(acc, 0, axis)
    return g


def pad(
    input: npt.ArrayLike, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> FloatArray:
    """F.pad: `pad` lists (left, right) pairs starting from the last dim; negative values crop.

    Modes: constant (fill with `value`, default 0), reflect (mirror without repeating the edge),
    replicate (repeat the edge), circular (wrap around).
    """
    x = _f64(input)
    if mode not in _PAD_MODES:
        raise ValueError(f"unknown padding mode {mode!r}; expected one of {_PAD_MODES}")
    fill = 0.0 if value is None else float(value)
    dims = len(pad) // 2
    if mode != "constant" and not (1 <= dims <= 3 and x.ndim in (dims + 1, dims + 2)):
        raise ValueError(
            f"{mode} padding of {dims} dims needs a {dims + 1}-D or {dims + 2}-D input, got {x.shape}"
        )
    return _apply_pad(x, _pad_pairs(pad, x.ndim), mode, fill)


def _spatial_pairs(pads: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(0, 0), (0, 0), *pads]


def _padding_mode(padding_mode: str) -> str:
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {tuple(_PADDING_MODES)}, got {padding_mode!r}")
    return _PADDING_MODES[padding_mode]


# ---------------------------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------------------------


def _conv_pads(
    padding: Size | str, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> list[tuple[int, int]]:
    nd = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            return [same_padding(k, d) for k, d in zip(kernel, dilation, strict=True)]
        raise ValueError(f"invalid padding string {padding!r}; expected 'same' or 'valid'")
    pads = _ntuple(padding, nd, "padding")
    if any(p < 0 for p in pads):
        raise ValueError(f"negative padding is not supported, got {padding!r}")
    return [(p, p) for p in pads]


class _ConvGeometry:
    """Validated arguments of one convolution call (batched input, weight, per-dim stride/dilation/pads)."""

    def __init__(
        self,
        nd: int,
        op: str,
        input: npt.ArrayLike,
        weight: npt.ArrayLike,
        stride: Size,
        padding: Size | str,
        dilation: Size,
        groups: int,
        padding_mode: str,
    ) -> None:
        self.x, self.unbatched = _batched(_f64(input), nd, op)
        self.w = _f64(weight)
        if self.w.ndim != nd + 2:
            raise ValueError(f"{op} expects a {nd + 2}-D weight, got shape {self.w.shape}")
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        self.kernel = tuple(self.w.shape[2:])
        self.stride = _ntuple(stride, nd, "stride")
        self.dilation = _ntuple(dilation, nd, "dilation")
        if any(s < 1 for s in self.stride) or any(d < 1 for d in self.dilation):
            raise ValueError(f"stride and dilation must be >= 1, got {self.stride} and {self.dilation}")
        channels = self.x.shape[1]
        if channels != self.w.shape[1] * groups:
            raise ValueError(
                f"{op}: input has {channels} channels but weight {self.w.shape} with groups={groups} "
                f"expects {self.w.shape[1] * groups}"
            )
        if self.w.shape[0] % groups:
            raise ValueError(f"{op}: out_channels {self.w.shape[0]} is not divisible by groups={groups}")
        self.groups = groups
        self.pads = _conv_pads(padding, self.kernel, self.stride, self.dilation)
        self.mode = _padding_mode(padding_mode)
        self.xp = _apply_pad(self.x, _spatial_pairs(self.pads), self.mode, 0.0)
        self.out_sizes = tuple(
            conv_output_size(s, k, st, 0, d)
            for s, k, st, d in zip(self.xp.shape[2:], self.kernel, self.stride, self.dilation, strict=True)
        )


def _conv_forward(g: _ConvGeometry) -> FloatArray:
    """out[n, o, p] = sum_{c, tap} w[o, c, tap] * xp[n, c, p*stride + tap*dilation], one matmul per tap."""
    n, channels = g.xp.shape[:2]
    groups, out_channels = g.groups, g.w.shape[0]
    cg, og = channels // groups, out_channels // groups
    positions = math.prod(g.out_sizes)
    xg = g.xp.reshape(n, groups, cg, *g.xp.shape[2:])
    wg = g.w.reshape(groups, og, cg, *g.kernel)
    out = np.zeros((n, groups, og, positions), dtype=np.float64)
    for tap in np.ndindex(*g.kernel):
        window = xg[_trailing(_tap_slices(tap, g.stride, g.dilation, g.out_sizes))].reshape(
            n, groups, cg, positions
        )
        out += wg[_trailing(tap)] @ window
    return out.reshape(n, out_channels, *g.out_sizes)


def _add_bias(out: FloatArray, bias: npt.ArrayLike | None) -> FloatArray:
    if bias is None:
        return out
    b = _f64(bias)
    if b.shape != (out.shape[1],):
        raise ValueError(f"bias must have shape ({out.shape[1]},), got {b.shape}")
    return out + b.reshape(1, -1, *([1] * (out.ndim - 2)))


def _convnd(
    nd: int,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: Size,
    padding: Size | str,
    dilation: Size,
    groups: int,
    padding_mode: str,
) -> FloatArray:
    g = _ConvGeometry(nd, f"conv{nd}d", input, weight, stride, padding, dilation, groups, padding_mode)
    out = _add_bias(_conv_forward(g), bias)
    return out[0] if g.unbatched else out


def _convnd_backward(
    nd: int,
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: Size,
    padding: Size | str,
    dilation: Size,
    groups: int,
    padding_mode: str,
) -> dict[str, FloatArray]:
    g = _ConvGeometry(nd, f"conv{nd}d", input, weight, stride, padding, dilation, groups, padding_mode)
    go = _f64(grad_output)
    if g.unbatched:
        go = go[None]
    n, channels = g.xp.shape[:2]
    groups, out_channels = g.groups, g.w.shape[0]
    cg, og = channels // groups, out_channels // groups
    if go.shape != (n, out_channels, *g.out_sizes):
        raise ValueError(f"grad_output has shape {go.shape}, expected {(n, out_channels, *g.out_sizes)}")
    positions = math.prod(g.out_sizes)
    gog = go.reshape(n, groups, og, positions)
    xg = g.xp.reshape(n, groups, cg, *g.xp.shape[2:])
    wt = np.swapaxes(g.w.reshape(groups, og, cg, *g.kernel), 1, 2)
    grad_xp = np.zeros_like(xg)
    grad_w = np.zeros((groups, og, cg, *g.kernel), dtype=np.float64)
    for tap in np.ndindex(*g.kernel):
        sl = _trailing(_tap_slices(tap, g.stride, g.dilation, g.out_sizes))
        window = xg[sl].reshape(n, groups, cg, positions)
        grad_w[_trailing(tap)] = (gog @ np.swapaxes(window, -1, -2)).sum(axis=0)
        grad_xp[sl] += (wt[_trailing(tap)] @ gog).reshape(n, groups, cg, *g.out_sizes)
    grad_x = _pad_backward(grad_xp.reshape(g.xp.shape), g.x.shape, _spatial_pairs(g.pads), g.mode)
    grads = {"input": grad_x[0] if g.unbatched else grad_x, "weight": grad_w.reshape(g.w.shape)}
    if bias is not None:
        grads["bias"] = go.sum(axis=(0, *range(2, go.ndim)))
    return grads


def conv1d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size | str = 0,
    dilation: Size = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> FloatArray:
    """F.conv1d (cross-correlation); padding_mode gives nn.Conv1d's F.pad-then-convolve semantics."""
    return _convnd(1, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv2d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size | str = 0,
    dilation: Size = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> FloatArray:
    """F.conv2d (cross-correlation); padding_mode gives nn.Conv2d's F.pad-then-convolve semantics."""
    return _convnd(2, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv3d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size | str = 0,
    dilation: Size = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> FloatArray:
    """F.conv3d (cross-correlation); padding_mode gives nn.Conv3d's F.pad-then-convolve semantics."""
    return _convnd(3, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv1d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size | str = 0,
    dilation: Size = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> dict[str, FloatArray]:
    """Gradients of conv1d: {"input", "weight"} and "bias" when a bias was given."""
    return _convnd_backward(
        1, grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode
    )


def conv2d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size | str = 0,
    dilation: Size = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> dict[str, FloatArray]:
    """Gradients of conv2d: {"input", "weight"} and "bias" when a bias was given."""
    return _convnd_backward(
        2, grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode
    )


def conv3d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size | str = 0,
    dilation: Size = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> dict[str, FloatArray]:
    """Gradients of conv3d: {"input", "weight"} and "bias" when a bias was given."""
    return _convnd_backward(
        3, grad_output, input, weight, bias, stride, padding, dilation, groups, padding_mode
    )


# ---------------------------------------------------------------------------------------------------------
# transposed convolution
# ---------------------------------------------------------------------------------------------------------


class _ConvTransposeGeometry:
    """Validated arguments of one transposed convolution; `full` is the output before cropping `padding`."""

    def __init__(
        self,
        nd: int,
        input: npt.ArrayLike,
        weight: npt.ArrayLike,
        stride: Size,
        padding: Size,
        output_padding: Size,
        groups: int,
        dilation: Size,
    ) -> None:
        op = f"conv_transpose{nd}d"
        self.x, self.unbatched = _batched(_f64(input), nd, op)
        self.w = _f64(weight)
        if self.w.ndim != nd + 2:
            raise ValueError(f"{op} expects a {nd + 2}-D weight, got shape {self.w.shape}")
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        channels = self.x.shape[1]
        if channels != self.w.shape[0]:
            raise ValueError(
                f"{op}: input has {channels} channels but weight {self.w.shape} expects {self.w.shape[0]}"
            )
        if channels % groups:
            raise ValueError(f"{op}: in_channels {channels} is not divisible by groups={groups}")
        self.groups = groups
        self.kernel = tuple(self.w.shape[2:])
        self.stride = _ntuple(stride, nd, "stride")
        self.padding = _ntuple(padding, nd, "padding")
        self.output_padding = _ntuple(output_padding, nd, "output_padding")
        self.dilation = _ntuple(dilation, nd, "dilation")
        self.in_sizes = tuple(self.x.shape[2:])
        self.out_sizes = tuple(
            conv_transpose_output_size(s, k, st, p, op_, d)
            for s, k, st, p, op_, d in zip(
                self.in_sizes,
                self.kernel,
                self.stride,
                self.padding,
                self.output_padding,
                self.dilation,
                strict=True,
            )
        )
        self.full = tuple(o + 2 * p for o, p in zip(self.out_sizes, self.padding, strict=True))
        self.crop = _trailing((slice(p, p + o) for p, o in zip(self.padding, self.out_sizes, strict=True)))


def _conv_transpose_forward(g: _ConvTransposeGeometry) -> FloatArray:
    """out[n, o, i*stride - padding + tap*dilation] += sum_c x[n, c, i] * w[c, o, tap]."""
    n, channels = g.x.shape[:2]
    groups, og = g.groups, g.w.shape[1]
    cg = channels // groups
    positions = math.prod(g.in_sizes)
    xg = g.x.reshape(n, groups, cg, positions)
    wt = np.swapaxes(g.w.reshape(groups, cg, og, *g.kernel), 1, 2)
    buf = np.zeros((n, groups, og, *g.full), dtype=np.float64)
    for tap in np.ndindex(*g.kernel):
        sl = _trailing(_tap_slices(tap, g.stride, g.dilation, g.in_sizes))
        buf[sl] += (wt[_trailing(tap)] @ xg).reshape(n, groups, og, *g.in_sizes)
    out: FloatArray = buf[g.crop].reshape(n, groups * og, *g.out_sizes)
    return out


def _conv_transposend(
    nd: int,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: Size,
    padding: Size,
    output_padding: Size,
    groups: int,
    dilation: Size,
) -> FloatArray:
    g = _ConvTransposeGeometry(nd, input, weight, stride, padding, output_padding, groups, dilation)
    out = _add_bias(_conv_transpose_forward(g), bias)
    return out[0] if g.unbatched else out


def _conv_transposend_backward(
    nd: int,
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: Size,
    padding: Size,
    output_padding: Size,
    groups: int,
    dilation: Size,
) -> dict[str, FloatArray]:
    g = _ConvTransposeGeometry(nd, input, weight, stride, padding, output_padding, groups, dilation)
    go = _f64(grad_output)
    if g.unbatched:
        go = go[None]
    n, channels = g.x.shape[:2]
    groups, og = g.groups, g.w.shape[1]
    cg = channels // groups
    if go.shape != (n, groups * og, *g.out_sizes):
        raise ValueError(f"grad_output has shape {go.shape}, expected {(n, groups * og, *g.out_sizes)}")
    positions = math.prod(g.in_sizes)
    buf = np.zeros((n, groups, og, *g.full), dtype=np.float64)
    buf[g.crop] = go.reshape(n, groups, og, *g.out_sizes)
    xg = g.x.reshape(n, groups, cg, positions)
    wg = g.w.reshape(groups, cg, og, *g.kernel)
    grad_x = np.zeros((n, groups, cg, positions), dtype=np.float64)
    grad_w = np.zeros((groups, cg, og, *g.kernel), dtype=np.float64)
    for tap in np.ndindex(*g.kernel):
        window = buf[_trailing(_tap_slices(tap, g.stride, g.dilation, g.in_sizes))].reshape(
            n, groups, og, positions
        )
        grad_x += wg[_trailing(tap)] @ window
        grad_w[_trailing(tap)] = (xg @ np.swapaxes(window, -1, -2)).sum(axis=0)
    gx = grad_x.reshape(g.x.shape)
    grads = {"input": gx[0] if g.unbatched else gx, "weight": grad_w.reshape(g.w.shape)}
    if bias is not None:
        grads["bias"] = go.sum(axis=(0, *range(2, go.ndim)))
    return grads


def conv_transpose1d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    groups: int = 1,
    dilation: Size = 1,
) -> FloatArray:
    """F.conv_transpose1d; weight is (C_in, C_out/groups, k). Note torch's order: groups before dilation."""
    return _conv_transposend(1, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose2d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    groups: int = 1,
    dilation: Size = 1,
) -> FloatArray:
    """F.conv_transpose2d; weight is (C_in, C_out/groups, kh, kw). Note: groups comes before dilation."""
    return _conv_transposend(2, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose3d(
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    groups: int = 1,
    dilation: Size = 1,
) -> FloatArray:
    """F.conv_transpose3d; weight is (C_in, C_out/groups, kd, kh, kw)."""
    return _conv_transposend(3, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose1d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    groups: int = 1,
    dilation: Size = 1,
) -> dict[str, FloatArray]:
    """Gradients of conv_transpose1d: {"input", "weight"} and "bias" when a bias was given."""
    return _conv_transposend_backward(
        1, grad_output, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose2d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    groups: int = 1,
    dilation: Size = 1,
) -> dict[str, FloatArray]:
    """Gradients of conv_transpose2d: {"input", "weight"} and "bias" when a bias was given."""
    return _conv_transposend_backward(
        2, grad_output, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose3d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    stride: Size = 1,
    padding: Size = 0,
    output_padding: Size = 0,
    groups: int = 1,
    dilation: Size = 1,
) -> dict[str, FloatArray]:
    """Gradients of conv_transpose3d: {"input", "weight"} and "bias" when a bias was given."""
    return _conv_transposend_backward(
        3, grad_output, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


# ---------------------------------------------------------------------------------------------------------
# max / avg pooling
# ---------------------------------------------------------------------------------------------------------


class _PoolGeometry:
    """Validated pooling arguments; `pads` extends the right side so ceil-mode windows fit in the buffer."""

    def __init__(
        self,
        nd: int,
        op: str,
        input: npt.ArrayLike,
        kernel_size: Size,
        stride: Size | None,
        padding: Size,
        dilation: Size,
        ceil_mode: bool,
    ) -> None:
        self.x, self.unbatched = _batched(_f64(input), nd, op)
        self.kernel = _ntuple(kernel_size, nd, "kernel_size")
        no_stride = stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
        self.stride = self.kernel if no_stride else _ntuple(stride, nd, "stride")  # type: ignore[arg-type]
        self.padding = _ntuple(padding, nd, "padding")
        self.dilation = _ntuple(dilation, nd, "dilation")
        self.sizes = tuple(self.x.shape[2:])
        self.out_sizes = tuple(
            pool_output_size(s, k, st, p, d, ceil_mode)
            for s, k, st, p, d in zip(
                self.sizes, self.kernel, self.stride, self.padding, self.dilation, strict=True
            )
        )
        # windows in padded coordinates start at o*stride; the last one ends at (o-1)*stride + d*(k-1) + 1
        self.pads = [
            (p, max(0, (o - 1) * st + d * (k - 1) + 1 - p - s))
            for s, k, st, p, d, o in zip(
                self.sizes, self.kernel, self.stride, self.padding, self.dilation, self.out_sizes, strict=True
            )
        ]
        # window start of each output position, in input coordinates (may be negative: left padding)
        self.starts = [
            np.arange(o, dtype=np.int64) * st - p
            for o, st, p in zip(self.out_sizes, self.stride, self.padding, strict=True)
        ]

    def windows(self, xp: FloatArray) -> Any:
        """Yield (tap, strided view of xp) for every kernel tap, in torch's row-major scan order."""
        for tap in np.ndindex(*self.kernel):
            yield tap, xp[_trailing(_tap_slices(tap, self.stride, self.dilation, self.out_sizes))]

    def unbatch(self, out: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return out[0] if self.unbatched else out


def _max_pool_forward(g: _PoolGeometry) -> tuple[FloatArray, IntArray]:
    """Max and flat argmax per window, replicating torch's CPU kernel scan exactly.

    torch scans the window row-major from its first in-bounds tap, starting from (max=-inf, index=that
    tap) and replacing on `val > max or isnan(val)`: ties keep the first maximum, NaN propagates and the
    index is the *last* NaN in the window.
    """
    xp = _apply_pad(g.x, _spatial_pairs(g.pads), "constant", -np.inf)
    plane = _plane_strides(g.sizes)
    # initial index: window start clipped into the input by whole dilation steps (torch's `while (i<0) i+=d`)
    first = [
        np.where(s < 0, s + ((-s + d - 1) // d) * d, s) for s, d in zip(g.starts, g.dilation, strict=True)
    ]
    out_shape = (*g.x.shape[:2], *g.out_sizes)
    index = np.broadcast_to(_outer([f * st for f, st in zip(first, plane, strict=True)], np.add), out_shape)
    best = np.full(out_shape, -np.inf, dtype=np.float64)
    for tap, values in g.windows(xp):
        flat = _outer(
            [(s + t * d) * st for s, t, d, st in zip(g.starts, tap, g.dilation, plane, strict=True)], np.add
        )
        take = (values > best) | np.isnan(values)
        best = np.where(take, values, best)
        index = np.where(take, flat, index)
    return best, index.astype(np.int64)


def _max_pool_backward(g: _PoolGeometry, grad_output: FloatArray) -> FloatArray:
    _, index = _max_pool_forward(g)
    n, c = g.x.shape[:2]
    plane = math.prod(g.sizes)
    go = grad_output.reshape(n * c, -1)
    idx = index.reshape(n * c, -1)
    ok = (idx >= 0) & (idx < plane)
    rows = np.broadcast_to(np.arange(n * c, dtype=np.int64)[:, None] * plane, idx.shape)
    grad = np.bincount((rows + idx)[ok], weights=go[ok], minlength=n * c * plane)
    return np.asarray(grad, dtype=np.float64).reshape(g.x.shape)


def _pool_grad_output(g: _PoolGeometry, grad_output: npt.ArrayLike) -> FloatArray:
    go = _f64(grad_output)
    if g.unbatched:
        go = go[None]
    expected = (*g.x.shape[:2], *g.out_sizes)
    if go.shape != expected:
        raise ValueError(f"grad_output has shape {go.shape}, expected {expected}")
    return go


def _max_poolnd(
    nd: int,
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None,
    padding: Size,
    dilation: Size,
    ceil_mode: bool,
    return_indices: bool,
) -> FloatArray | tuple[FloatArray, IntArray]:
    g = _PoolGeometry(nd, f"max_pool{nd}d", input, kernel_size, stride, padding, dilation, ceil_mode)
    out, index = _max_pool_forward(g)
    if return_indices:
        return g.unbatch(out), g.unbatch(index)
    return g.unbatch(out)


def _avg_divisor(g: _PoolGeometry, count_include_pad: bool) -> tuple[FloatArray, BoolArray]:
    """torch's per-window divisor and the windows that hold no input element (whose output is 0).

    Per dim: start = o*stride - pad; end = min(start + k, size + pad) (the padded extent, so ceil-mode
    overhang never counts); the count_include_pad divisor is end - start, otherwise the window is further
    clipped to [0, size). The nd divisor is the product over dims.
    """
    pool_lens, valid_lens = [], []
    for start, k, s, p in zip(g.starts, g.kernel, g.sizes, g.padding, strict=True):
        end = np.minimum(start + k, s + p)
        pool_lens.append((end - start).astype(np.float64))
        valid_lens.append((np.minimum(end, s) - np.maximum(start, 0)).astype(np.float64))
    empty = _outer([v <= 0 for v in valid_lens], np.logical_or)
    divisor = _outer(pool_lens if count_include_pad else valid_lens, np.multiply)
    return divisor, empty


def _avg_pool_forward(g: _PoolGeometry, count_include_pad: bool, divisor_override: int | None) -> FloatArray:
    xp = _apply_pad(g.x, _spatial_pairs(g.pads), "constant", 0.0)
    total = np.zeros((*g.x.shape[:2], *g.out_sizes), dtype=np.float64)
    for _, values in g.windows(xp):
        total += values
    divisor, empty = _avg_divisor(g, count_include_pad)
    if divisor_override is not None:
        divisor = np.full_like(divisor, float(divisor_override))
    return np.where(empty, 0.0, total / np.where(empty, 1.0, divisor))


def _avg_pool_backward(
    g: _PoolGeometry, grad_output: FloatArray, count_include_pad: bool, divisor_override: int | None
) -> FloatArray:
    divisor, empty = _avg_divisor(g, count_include_pad)
    if divisor_override is not None:
        divisor = np.full_like(divisor, float(divisor_override))
    share = np.where(empty, 0.0, grad_output / np.where(empty, 1.0, divisor))
    padded = tuple(s + left + right for s, (left, right) in zip(g.sizes, g.pads, strict=True))
    grad_xp = np.zeros((*g.x.shape[:2], *padded), dtype=np.float64)
    for tap in np.ndindex(*g.kernel):
        grad_xp[_trailing(_tap_slices(tap, g.stride, g.dilation, g.out_sizes))] += share
    crop = _trailing((slice(left, left + s) for s, (left, _) in zip(g.sizes, g.pads, strict=True)))
    return np.ascontiguousarray(grad_xp[crop])


def _check_divisor(divisor_override: int | None) -> None:
    if divisor_override is not None and divisor_override == 0:
        raise ValueError("divisor_override must be non-zero")


def _avg_poolnd(
    nd: int,
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None,
    padding: Size,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> FloatArray:
    _check_divisor(divisor_override)
    g = _PoolGeometry(nd, f"avg_pool{nd}d", input, kernel_size, stride, padding, 1, ceil_mode)
    return g.unbatch(_avg_pool_forward(g, count_include_pad, divisor_override))


@overload
def max_pool1d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = ...,
    padding: Size = ...,
    dilation: Size = ...,
    ceil_mode: bool = ...,
    return_indices: Literal[False] = ...,
) -> FloatArray: ...
@overload
def max_pool1d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = ...,
    padding: Size = ...,
    dilation: Size = ...,
    ceil_mode: bool = ...,
    *,
    return_indices: Literal[True],
) -> tuple[FloatArray, IntArray]: ...
@overload
def max_pool1d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = ...,
    padding: Size = ...,
    dilation: Size = ...,
    ceil_mode: bool = ...,
    return_indices: bool = ...,
) -> FloatArray | tuple[FloatArray, IntArray]: ...
def max_pool1d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> FloatArray | tuple[FloatArray, IntArray]:
    """F.max_pool1d: -inf padding, torch's ceil-mode rule; indices are flat into the unpadded length."""
    return _max_poolnd(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@overload
def max_pool2d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = ...,
    padding: Size = ...,
    dilation: Size = ...,
    ceil_mode: bool = ...,
    return_indices: Literal[False] = ...,
) -> FloatArray: ...
@overload
def max_pool2d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = ...,
    padding: Size = ...,
    dilation: Size = ...,
    ceil_mode: bool = ...,
    *,
    return_indices: Literal[True],
) -> tuple[FloatArray, IntArray]: ...
@overload
def max_pool2d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = ...,
    padding: Size = ...,
    dilation: Size = ...,
    ceil_mode: bool = ...,
    return_indices: bool = ...,
) -> FloatArray | tuple[FloatArray, IntArray]: ...
def max_pool2d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> FloatArray | tuple[FloatArray, IntArray]:
    """F.max_pool2d: -inf padding, torch's ceil-mode rule; indices are flat into each unpadded H*W plane."""
    return _max_poolnd(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@overload
def max_pool3d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = ...,
    padding: Size = ...,
    dilation: Size = ...,
    ceil_mode: bool = ...,
    return_indices: Literal[False] = ...,
) -> FloatArray: ...
@overload
def max_pool3d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = ...,
    padding: Size = ...,
    dilation: Size = ...,
    ceil_mode: bool = ...,
    *,
    return_indices: Literal[True],
) -> tuple[FloatArray, IntArray]: ...
@overload
def max_pool3d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = ...,
    padding: Size = ...,
    dilation: Size = ...,
    ceil_mode: bool = ...,
    return_indices: bool = ...,
) -> FloatArray | tuple[FloatArray, IntArray]: ...
def max_pool3d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> FloatArray | tuple[FloatArray, IntArray]:
    """F.max_pool3d: -inf padding, torch's ceil-mode rule; indices are flat into each D*H*W volume."""
    return _max_poolnd(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """F.avg_pool1d with torch's divisor rule (see _avg_divisor); divisor_override is an extension."""
    return _avg_poolnd(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool2d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """F.avg_pool2d with torch's divisor rule: windows clipped to the padded extent (or the input)."""
    return _avg_poolnd(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool3d(
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> FloatArray:
    """F.avg_pool3d with torch's divisor rule: windows clipped to the padded extent (or the input)."""
    return _avg_poolnd(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _max_poolnd_backward(
    nd: int,
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None,
    padding: Size,
    dilation: Size,
    ceil_mode: bool,
) -> dict[str, FloatArray]:
    g = _PoolGeometry(nd, f"max_pool{nd}d", input, kernel_size, stride, padding, dilation, ceil_mode)
    return {"input": g.unbatch(_max_pool_backward(g, _pool_grad_output(g, grad_output)))}


def max_pool1d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> dict[str, FloatArray]:
    """Gradient of max_pool1d: each output's gradient goes to its argmax (torch's tie/NaN rule)."""
    return _max_poolnd_backward(1, grad_output, input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> dict[str, FloatArray]:
    """Gradient of max_pool2d: each output's gradient goes to its argmax (torch's tie/NaN rule)."""
    return _max_poolnd_backward(2, grad_output, input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool3d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    dilation: Size = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> dict[str, FloatArray]:
    """Gradient of max_pool3d: each output's gradient goes to its argmax (torch's tie/NaN rule)."""
    return _max_poolnd_backward(3, grad_output, input, kernel_size, stride, padding, dilation, ceil_mode)


def _avg_poolnd_backward(
    nd: int,
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None,
    padding: Size,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> dict[str, FloatArray]:
    _check_divisor(divisor_override)
    g = _PoolGeometry(nd, f"avg_pool{nd}d", input, kernel_size, stride, padding, 1, ceil_mode)
    go = _pool_grad_output(g, grad_output)
    return {"input": g.unbatch(_avg_pool_backward(g, go, count_include_pad, divisor_override))}


def avg_pool1d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> dict[str, FloatArray]:
    """Gradient of avg_pool1d: each output's gradient / divisor spread over its in-input window."""
    return _avg_poolnd_backward(
        1, grad_output, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def avg_pool2d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> dict[str, FloatArray]:
    """Gradient of avg_pool2d: each output's gradient / divisor spread over its in-input window."""
    return _avg_poolnd_backward(
        2, grad_output, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def avg_pool3d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    kernel_size: Size,
    stride: Size | None = None,
    padding: Size = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> dict[str, FloatArray]:
    """Gradient of avg_pool3d: each output's gradient / divisor spread over its in-input window."""
    return _avg_poolnd_backward(
        3, grad_output, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


# ---------------------------------------------------------------------------------------------------------
# adaptive pooling
# ---------------------------------------------------------------------------------------------------------


class _AdaptiveGeometry:
    """Adaptive windows per dim: start = floor(i*L/out), end = ceil((i+1)*L/out)."""

    def __init__(self, nd: int, op: str, input: npt.ArrayLike, output_size: Any) -> None:
        self.x, self.unbatched = _batched(_f64(input), nd, op)
        self.sizes = tuple(self.x.shape[2:])
        if output_size is None or not isinstance(output_size, (Sequence, np.ndarray)):
            requested: list[Any] = [output_size] * nd
        else:
            requested = list(output_size)
            if len(requested) == 1:
                requested *= nd
        if len(requested) != nd:
            raise ValueError(f"{op}: output_size must have {nd} entries, got {output_size!r}")
        self.out_sizes = tuple(
            s if o is None else operator.index(o) for s, o in zip(self.sizes, requested, strict=True)
        )
        if any(o < 1 for o in self.out_sizes):
            raise ValueError(f"{op}: output_size must be >= 1, got {output_size!r}")
        self.starts: list[IntArray] = []
        self.lengths: list[IntArray] = []
        for s, o in zip(self.sizes, self.out_sizes, strict=True):
            i = np.arange(o, dtype=np.int64)
            start = (i * s) // o
            end = ((i + 1) * s + o - 1) // o
            self.starts.append(start)
            self.lengths.append(end - start)
        self.kmax = tuple(int(length.max()) for length in self.lengths)

    def taps(self) -> Any:
        """Yield (values, valid mask, flat index) for each tap of the largest window, in row-major order."""
        plane = _plane_strides(self.sizes)
        for tap in np.ndindex(*self.kmax):
            pos = [
                np.minimum(start + t, s - 1) for start, t, s in zip(self.starts, tap, self.sizes, strict=True)
            ]
            values = self.x[_trailing(np.ix_(*pos))]
            valid = _outer([t < length for t, length in zip(tap, self.lengths, strict=True)], np.logical_and)
            flat = _outer([p * st for p, st in zip(pos, plane, strict=True)], np.add)
            yield values, valid, flat

    def count(self) -> FloatArray:
        return np.asarray(_outer([length.astype(np.float64) for length in self.lengths], np.multiply))

    def unbatch(self, out: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return out[0] if self.unbatched else out


def _adaptive_avg(g: _AdaptiveGeometry) -> FloatArray:
    total = np.zeros((*g.x.shape[:2], *g.out_sizes), dtype=np.float64)
    for values, valid, _ in g.taps():
        total += np.where(valid, values, 0.0)
    return total / g.count()


def _adaptive_max(g: _AdaptiveGeometry) -> tuple[FloatArray, IntArray]:
    """Same scan rule as max pooling: replace on `val > max or isnan(val)`, first in-window tap initially."""
    out_shape = (*g.x.shape[:2], *g.out_sizes)
    plane = _plane_strides(g.sizes)
    index = np.broadcast_to(
        _outer([s * st for s, st in zip(g.starts, plane, strict=True)], np.add), out_shape
    )
    best = np.full(out_shape, -np.inf, dtype=np.float64)
    for values, valid, flat in g.taps():
        take = valid & ((values > best) | np.isnan(values))
        best = np.where(take, values, best)
        index = np.where(take, flat, index)
    return best, index.astype(np.int64)


def _adaptive_avg_pool(nd: int, input: npt.ArrayLike, output_size: Any) -> FloatArray:
    g = _AdaptiveGeometry(nd, f"adaptive_avg_pool{nd}d", input, output_size)
    return g.unbatch(_adaptive_avg(g))


def _adaptive_max_pool(
    nd: int, input: npt.ArrayLike, output_size: Any, return_indices: bool
) -> FloatArray | tuple[FloatArray, IntArray]:
    g = _AdaptiveGeometry(nd, f"adaptive_max_pool{nd}d", input, output_size)
    out, index = _adaptive_max(g)
    if return_indices:
        return g.unbatch(out), g.unbatch(index)
    return g.unbatch(out)


def adaptive_avg_pool1d(input: npt.ArrayLike, output_size: int | Sequence[int]) -> FloatArray:
    """F.adaptive_avg_pool1d: window i covers [floor(i*L/out), ceil((i+1)*L/out))."""
    return _adaptive_avg_pool(1, input, output_size)


def adaptive_avg_pool2d(input: npt.ArrayLike, output_size: AdaptiveSize) -> FloatArray:
    """F.adaptive_avg_pool2d: window i covers [floor(i*L/out), ceil((i+1)*L/out)); None keeps a size."""
    return _adaptive_avg_pool(2, input, output_size)


def adaptive_avg_pool3d(input: npt.ArrayLike, output_size: AdaptiveSize) -> FloatArray:
    """F.adaptive_avg_pool3d: window i covers [floor(i*L/out), ceil((i+1)*L/out)); None keeps a size."""
    return _adaptive_avg_pool(3, input, output_size)


@overload
def adaptive_max_pool1d(
    input: npt.ArrayLike, output_size: int | Sequence[int], return_indices: Literal[False] = ...
) -> FloatArray: ...
@overload
def adaptive_max_pool1d(
    input: npt.ArrayLike, output_size: int | Sequence[int], return_indices: Literal[True]
) -> tuple[FloatArray, IntArray]: ...
@overload
def adaptive_max_pool1d(
    input: npt.ArrayLike, output_size: int | Sequence[int], return_indices: bool = ...
) -> FloatArray | tuple[FloatArray, IntArray]: ...
def adaptive_max_pool1d(
    input: npt.ArrayLike, output_size: int | Sequence[int], return_indices: bool = False
) -> FloatArray | tuple[FloatArray, IntArray]:
    """F.adaptive_max_pool1d with torch's scan/tie/NaN rule; indices are flat into the input length."""
    return _adaptive_max_pool(1, input, output_size, return_indices)


@overload
def adaptive_max_pool2d(
    input: npt.ArrayLike, output_size: AdaptiveSize, return_indices: Literal[False] = ...
) -> FloatArray: ...
@overload
def adaptive_max_pool2d(
    input: npt.ArrayLike, output_size: AdaptiveSize, return_indices: Literal[True]
) -> tuple[FloatArray, IntArray]: ...
@overload
def adaptive_max_pool2d(
    input: npt.ArrayLike, output_size: AdaptiveSize, return_indices: bool = ...
) -> FloatArray | tuple[FloatArray, IntArray]: ...
def adaptive_max_pool2d(
    input: npt.ArrayLike, output_size: AdaptiveSize, return_indices: bool = False
) -> FloatArray | tuple[FloatArray, IntArray]:
    """F.adaptive_max_pool2d with torch's scan/tie/NaN rule; indices are flat into each H*W plane."""
    return _adaptive_max_pool(2, input, output_size, return_indices)


@overload
def adaptive_max_pool3d(
    input: npt.ArrayLike, output_size: AdaptiveSize, return_indices: Literal[False] = ...
) -> FloatArray: ...
@overload
def adaptive_max_pool3d(
    input: npt.ArrayLike, output_size: AdaptiveSize, return_indices: Literal[True]
) -> tuple[FloatArray, IntArray]: ...
@overload
def adaptive_max_pool3d(
    input: npt.ArrayLike, output_size: AdaptiveSize, return_indices: bool = ...
) -> FloatArray | tuple[FloatArray, IntArray]: ...
def adaptive_max_pool3d(
    input: npt.ArrayLike, output_size: AdaptiveSize, return_indices: bool = False
) -> FloatArray | tuple[FloatArray, IntArray]:
    """F.adaptive_max_pool3d with torch's scan/tie/NaN rule; indices are flat into each D*H*W volume."""
    return _adaptive_max_pool(3, input, output_size, return_indices)


def _adaptive_avg_backward(
    nd: int, grad_output: npt.ArrayLike, input: npt.ArrayLike, output_size: Any
) -> FloatArray:
    g = _AdaptiveGeometry(nd, f"adaptive_avg_pool{nd}d", input, output_size)
    go = _f64(grad_output)
    if g.unbatched:
        go = go[None]
    share = go / g.count()
    n, c = g.x.shape[:2]
    plane = math.prod(g.sizes)
    rows = (np.arange(n * c, dtype=np.int64) * plane).reshape(n, c, *([1] * nd))
    grad = np.zeros(n * c * plane, dtype=np.float64)
    for _, valid, flat in g.taps():
        where = np.broadcast_to(valid, share.shape)
        grad += np.bincount((rows + flat)[where], weights=share[where], minlength=grad.size)
    return g.unbatch(grad.reshape(g.x.shape))


def _adaptive_max_backward(
    nd: int, grad_output: npt.ArrayLike, input: npt.ArrayLike, output_size: Any
) -> FloatArray:
    g = _AdaptiveGeometry(nd, f"adaptive_max_pool{nd}d", input, output_size)
    go = _f64(grad_output)
    if g.unbatched:
        go = go[None]
    _, index = _adaptive_max(g)
    n, c = g.x.shape[:2]
    plane = math.prod(g.sizes)
    rows = (np.arange(n * c, dtype=np.int64) * plane).reshape(n, c, *([1] * nd))
    grad = np.bincount((rows + index).ravel(), weights=go.ravel(), minlength=n * c * plane)
    return g.unbatch(grad.reshape(g.x.shape))


def adaptive_avg_pool1d_backward(
    grad_output: npt.ArrayLike, input: npt.ArrayLike, output_size: int | Sequence[int]
) -> dict[str, FloatArray]:
    """Gradient of adaptive_avg_pool1d."""
    return {"input": _adaptive_avg_backward(1, grad_output, input, output_size)}


def adaptive_avg_pool2d_backward(
    grad_output: npt.ArrayLike, input: npt.ArrayLike, output_size: AdaptiveSize
) -> dict[str, FloatArray]:
    """Gradient of adaptive_avg_pool2d."""
    return {"input": _adaptive_avg_backward(2, grad_output, input, output_size)}


def adaptive_max_pool1d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    output_size: int | Sequence[int],
    return_indices: bool = False,
) -> dict[str, FloatArray]:
    """Gradient of adaptive_max_pool1d (routed to the argmax)."""
    return {"input": _adaptive_max_backward(1, grad_output, input, output_size)}


def adaptive_max_pool2d_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    output_size: AdaptiveSize,
    return_indices: bool = False,
) -> dict[str, FloatArray]:
    """Gradient of adaptive_max_pool2d (routed to the argmax)."""
    return {"input": _adaptive_max_backward(2, grad_output, input, output_size)}


# ---------------------------------------------------------------------------------------------------------
# batch norm, linear, activations, reshapes
# ---------------------------------------------------------------------------------------------------------


def _bn_stats(
    x: FloatArray,
    running_mean: npt.ArrayLike | None,
    running_var: npt.ArrayLike | None,
    training: bool,
) -> tuple[FloatArray, FloatArray, tuple[int, ...], tuple[int, ...]]:
    """Mean and (biased, for normalisation) variance per channel, the reduce axes and a broadcast shape."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects an input of shape (N, C, *), got {x.shape}")
    channels = x.shape[1]
    axes = (0, *range(2, x.ndim))
    shape = (1, channels, *([1] * (x.ndim - 2)))
    if training:
        if x.size // max(channels, 1) <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {x.shape}"
            )
        return x.mean(axis=axes), x.var(axis=axes), axes, shape
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm in eval mode (training=False) needs running_mean and running_var")
    return _f64(running_mean), _f64(running_var), axes, shape


def batch_norm(
    input: npt.ArrayLike,
    running_mean: FloatArray | None,
    running_var: FloatArray | None,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> FloatArray:
    """F.batch_norm over (N, C, *). Training normalises with the biased batch variance and updates the
    running stats in place: new = (1 - momentum)*old + momentum*batch, using the unbiased variance."""
    x = _f64(input)
    mean, var, _, shape = _bn_stats(x, running_mean, running_var, training)
    if training:
        count = x.size // x.shape[1]
        if running_mean is not None:
            running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean
        if running_var is not None:
            running_var[...] = (1.0 - momentum) * running_var + momentum * var * (count / (count - 1))
    out = (x - mean.reshape(shape)) * (1.0 / np.sqrt(var + eps)).reshape(shape)
    if weight is not None:
        out = out * _f64(weight).reshape(shape)
    if bias is not None:
        out = out + _f64(bias).reshape(shape)
    return out


def batch_norm_backward(
    grad_output: npt.ArrayLike,
    input: npt.ArrayLike,
    running_mean: FloatArray | None,
    running_var: FloatArray | None,
    weight: npt.ArrayLike | None = None,
    bias: npt.ArrayLike | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> dict[str, FloatArray]:
    """Gradients of batch_norm (running stats untouched): "input", plus "weight"/"bias" when given.

    Training: dx = invstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) with dxhat = dy * weight,
    since the batch mean and variance depend on x. Eval: dx = dy * weight * invstd (constant stats).
    """
    x = _f64(input)
    go = _f64(grad_output)
    if go.shape != x.shape:
        raise ValueError(f"grad_output has shape {go.shape}, expected {x.shape}")
    mean, var, axes, shape = _bn_stats(x, running_mean, running_var, training)
    invstd = (1.0 / np.sqrt(var + eps)).reshape(shape)
    xhat = (x - mean.reshape(shape)) * invstd
    w = np.ones(shape) if weight is None else _f64(weight).reshape(shape)
    dxhat = go * w
    if training:
        grad_x = invstd * (
            dxhat
            - dxhat.mean(axis=axes, keepdims=True)
            - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
        )
    else:
        grad_x = dxhat * invstd
    grads = {"input": grad_x}
    if weight is not None:
        grads["weight"] = (go * xhat).sum(axis=axes)
    if bias is not None:
        grads["bias"] = go.sum(axis=axes)
    return grads


def linear(input: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None) -> FloatArray:
    """F.linear: y = x @ weight.T + bias over the last dim of x."""
    out = _f64(input) @ _f64(weight).T
    if bias is not None:
        out = out + _f64(bias)
    return np.asarray(out, dtype=np.float64)


def linear_backward(
    grad_output: npt.ArrayLike, input: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None
) -> dict[str, FloatArray]:
    """Gradients of linear: input = dy @ W, weight = dy^T x (summed over batch dims), bias = sum dy."""
    x, w, go = _f64(input), _f64(weight), _f64(grad_output)
    if w.ndim != 2:
        raise ValueError(f"linear_backward expects a 2-D weight, got shape {w.shape}")
    go2 = go.reshape(-1, w.shape[0])
    grads = {"input": go @ w, "weight": go2.T @ x.reshape(-1, w.shape[1])}
    if bias is not None:
        grads["bias"] = go2.sum(axis=0)
    return grads


def relu(input: npt.ArrayLike, inplace: bool = False) -> FloatArray:
    """F.relu: max(x, 0), NaN propagates."""
    x = _f64(input)
    return np.where(x > 0, x, np.where(np.isnan(x), x, 0.0))


def relu_backward(
    grad_output: npt.ArrayLike, input: npt.ArrayLike, inplace: bool = False
) -> dict[str, FloatArray]:
    """Gradient of relu: dy where x > 0, else 0 (0 at x == 0, as torch)."""
    return {"input": np.where(_f64(input) > 0, _f64(grad_output), 0.0)}


def sigmoid(input: npt.ArrayLike) -> FloatArray:
    """F.sigmoid, computed without overflow: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise."""
    x = _f64(input)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_backward(grad_output: npt.ArrayLike, input: npt.ArrayLike) -> dict[str, FloatArray]:
    """Gradient of sigmoid: dy * s * (1 - s)."""
    s = sigmoid(input)
    return {"input": _f64(grad_output) * s * (1.0 - s)}


def tanh(input: npt.ArrayLike) -> FloatArray:
    """F.tanh."""
    return np.tanh(_f64(input))


def tanh_backward(grad_output: npt.ArrayLike, input: npt.ArrayLike) -> dict[str, FloatArray]:
    """Gradient of tanh: dy * (1 - tanh(x)^2)."""
    t = np.tanh(_f64(input))
    return {"input": _f64(grad_output) * (1.0 - t * t)}


def _softmax_dim(ndim: int, dim: int | None) -> int:
    if dim is None:  # torch's legacy implicit-dim rule (_get_softmax_dim)
        return 0 if ndim in (0, 1, 3) else 1
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise ValueError(f"dim {dim} is out of range for a {ndim}-D input")
    return dim


def softmax(input: npt.ArrayLike, dim: int | None = None) -> FloatArray:
    """F.softmax along dim, stabilised by subtracting the max."""
    x = _f64(input)
    d = _softmax_dim(x.ndim, dim)
    if x.ndim == 0:
        return np.exp(x - x)
    e = np.exp(x - x.max(axis=d, keepdims=True))
    return np.asarray(e / e.sum(axis=d, keepdims=True), dtype=np.float64)


def log_softmax(input: npt.ArrayLike, dim: int | None = None) -> FloatArray:
    """F.log_softmax along dim: (x - max) - log(sum(exp(x - max)))."""
    x = _f64(input)
    d = _softmax_dim(x.ndim, dim)
    if x.ndim == 0:
        return x - x
    shifted = x - x.max(axis=d, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=d, keepdims=True)), dtype=np.float64)


def softmax_backward(
    grad_output: npt.ArrayLike, input: npt.ArrayLike, dim: int | None = None
) -> dict[str, FloatArray]:
    """Gradient of softmax: y * (dy - sum(dy * y))."""
    y = softmax(input, dim)
    go = _f64(grad_output)
    if y.ndim == 0:
        return {"input": np.zeros_like(y)}
    d = _softmax_dim(y.ndim, dim)
    return {"input": y * (go - (go * y).sum(axis=d, keepdims=True))}


def log_softmax_backward(
    grad_output: npt.ArrayLike, input: npt.ArrayLike, dim: int | None = None
) -> dict[str, FloatArray]:
    """Gradient of log_softmax: dy - softmax(x) * sum(dy)."""
    y = softmax(input, dim)
    go = _f64(grad_output)
    if y.ndim == 0:
        return {"input": np.zeros_like(y)}
    d = _softmax_dim(y.ndim, dim)
    return {"input": go - y * go.sum(axis=d, keepdims=True)}


def flatten(input: npt.ArrayLike, start_dim: int = 0, end_dim: int = -1) -> FloatArray:
    """torch.flatten: merge dims start_dim..end_dim (inclusive); a 0-D input becomes shape (1,)."""
    x = _f64(input)
    if x.ndim == 0:
        return x.reshape(1)
    start = start_dim + x.ndim if start_dim < 0 else start_dim
    end = end_dim + x.ndim if end_dim < 0 else end_dim
    if not 0 <= start <= end < x.ndim:
        raise ValueError(f"flatten: invalid start_dim={start_dim}, end_dim={end_dim} for a {x.ndim}-D input")
    return x.reshape(*x.shape[:start], math.prod(x.shape[start : end + 1]), *x.shape[end + 1 :])


# ---------------------------------------------------------------------------------------------------------
# interpolate
# ---------------------------------------------------------------------------------------------------------

_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _nearest_index(n_in: int, n_out: int, scale: float | None, exact: bool) -> IntArray:
    """torch's nearest source index, computed in float32 as ATen does (UpSample.h nearest_idx).

    nearest: out == in copies, out == 2*in halves, else floor(dst * s) with s = float32(1/scale_factor)
    or float32(in)/out; nearest-exact: floor((dst + 0.5) * s). Both are clamped to in - 1.
    """
    dst = np.arange(n_out, dtype=np.int64)
    if not exact:
        if n_out == n_in:
            return dst
        if n_out == 2 * n_in:
            return dst >> 1
    s32 = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(n_in) / np.float32(n_out)
    if exact:
        src = np.floor(((dst + 0.5) * float(s32)).astype(np.float32))
    else:
        src = np.floor(dst.astype(np.float32) * s32)
    return np.minimum(src.astype(np.int64), n_in - 1)


def _linear_weights(
    n_in: int, n_out: int, scale: float | None, align_corners: bool
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """torch's linear-interpolation source indices and weights (UpSample.h compute_source_index_and_lambda).

    out == in copies. Otherwise align_corners: src = dst*(in-1)/(out-1); else src = (dst+0.5)*s - 0.5,
    clamped at 0, with s = 1/scale_factor when given else in/out. i0 = min(floor(src), in-1),
    i1 = min(i0+1, in-1), lambda1 = clamp(src - i0, 0, 1).
    """
    dst = np.arange(n_out, dtype=np.int64)
    if n_out == n_in:
        return dst, dst, np.ones(n_out), np.zeros(n_out)
    if align_corners:
        ratio = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        real = ratio * dst.astype(np.float64)
    else:
        ratio = 1.0 / scale if scale is not None and scale > 0 else n_in / n_out
        unclamped = ratio * (dst + 0.5) - 0.5
        real = np.where(unclamped < 0, 0.0, unclamped)
    i0 = np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), n_in - 1)
    lambda1 = np.clip(real - i0, 0.0, 1.0)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, 1.0 - lambda1, lambda1


def interpolate(
    input: npt.ArrayLike,
    size: Size | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> FloatArray:
    """F.interpolate for nearest, nearest-exact and (bi/tri)linear, with torch's source-index rules.

    Output size = size, or floor(in * scale_factor). The kernel uses scale_factor itself (1/scale_factor)
    unless recompute_scale_factor is set or size was given (then in/out).
    """
    x = _f64(input)
    nd = x.ndim - 2
    if nd < 1:
        raise ValueError(f"interpolate expects an input of shape (N, C, *spatial), got {x.shape}")
    if antialias:
        raise ValueError("antialias=True is not supported by the reference")
    if mode in ("nearest", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                "align_corners option can only be set with the interpolating modes: linear | bilinear"
            )
    elif mode in _LINEAR_MODES:
        if _LINEAR_MODES[mode] != nd:
            raise ValueError(
                f"mode {mode!r} expects a {_LINEAR_MODES[mode] + 2}-D input, got shape {x.shape}"
            )
    else:
        raise ValueError(f"unsupported interpolate mode {mode!r}")
    in_sizes = x.shape[2:]
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    scales: list[float | None]
    if size is not None:
        out_sizes = _ntuple(size, nd, "size")
        scales = [None] * nd
    elif scale_factor is not None:
        factors = (
            [float(f) for f in scale_factor]
            if isinstance(scale_factor, Sequence)
            else [float(scale_factor)] * nd
        )
        if len(factors) != nd:
            raise ValueError(f"scale_factor must have {nd} entries, got {scale_factor!r}")
        out_sizes = tuple(math.floor(float(n) * f) for n, f in zip(in_sizes, factors, strict=True))
        scales = [None] * nd if recompute_scale_factor else list(factors)
    else:
        raise ValueError("either size or scale_factor should be defined")
    if any(o < 1 for o in out_sizes):
        raise ValueError(f"interpolate output size {out_sizes} must be positive")
    out = x
    # innermost dim first: matches torch's nesting h0*(w0*x00 + w1*x01) + h1*(...) operation for operation
    for axis in reversed(range(nd)):
        n_in, n_out, scale = in_sizes[axis], out_sizes[axis], scales[axis]
        ax = axis + 2
        if mode in _LINEAR_MODES:
            i0, i1, l0, l1 = _linear_weights(n_in, n_out, scale, bool(align_corners))
            bshape = [1] * x.ndim
            bshape[ax] = -1
            out = np.take(out, i0, axis=ax) * l0.reshape(bshape) + np.take(out, i1, axis=ax) * l1.reshape(
                bshape
            )
        else:
            out = np.take(out, _nearest_index(n_in, n_out, scale, mode == "nearest-exact"), axis=ax)
    return np.ascontiguousarray(out)


# ---------------------------------------------------------------------------------------------------------
# registries
# ---------------------------------------------------------------------------------------------------------

REFERENCES: dict[str, Callable[..., Any]] = {
    "conv1d": conv1d,
    "conv2d": conv2d,
    "conv3d": conv3d,
    "conv_transpose1d": conv_transpose1d,
    "conv_transpose2d": conv_transpose2d,
    "conv_transpose3d": conv_transpose3d,
    "max_pool1d": max_pool1d,
    "max_pool2d": max_pool2d,
    "max_pool3d": max_pool3d,
    "avg_pool1d": avg_pool1d,
    "avg_pool2d": avg_pool2d,
    "avg_pool3d": avg_pool3d,
    "adaptive_avg_pool1d": adaptive_avg_pool1d,
    "adaptive_avg_pool2d": adaptive_avg_pool2d,
    "adaptive_avg_pool3d": adaptive_avg_pool3d,
    "adaptive_max_pool1d": adaptive_max_pool1d,
    "adaptive_max_pool2d": adaptive_max_pool2d,
    "adaptive_max_pool3d": adaptive_max_pool3d,
    "batch_norm": batch_norm,
    "linear": linear,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "flatten": flatten,
    "interpolate": interpolate,
    "pad": pad,
}
"""torch.nn.functional op name -> reference; call as REFERENCES[op](*inputs, **args) with torch's args."""

GRADIENTS: dict[str, Callable[..., dict[str, FloatArray]]] = {
    "conv1d": conv1d_backward,
    "conv2d": conv2d_backward,
    "conv3d": conv3d_backward,
    "conv_transpose1d": conv_transpose1d_backward,
    "conv_transpose2d": conv_transpose2d_backward,
    "conv_transpose3d": conv_transpose3d_backward,
    "linear": linear_backward,
    "max_pool1d": max_pool1d_backward,
    "max_pool2d": max_pool2d_backward,
    "max_pool3d": max_pool3d_backward,
    "avg_pool1d": avg_pool1d_backward,
    "avg_pool2d": avg_pool2d_backward,
    "avg_pool3d": avg_pool3d_backward,
    "adaptive_avg_pool1d": adaptive_avg_pool1d_backward,
    "adaptive_avg_pool2d": adaptive_avg_pool2d_backward,
    "adaptive_max_pool1d": adaptive_max_pool1d_backward,
    "adaptive_max_pool2d": adaptive_max_pool2d_backward,
    "batch_norm": batch_norm_backward,
    "relu": relu_backward,
    "sigmoid": sigmoid_backward,
    "tanh": tanh_backward,
    "softmax": softmax_backward,
    "log_softmax": log_softmax_backward,
}
"""op name -> vector-Jacobian product: GRADIENTS[op](grad_output, *inputs, **args) -> {"input": ..., ...}."""

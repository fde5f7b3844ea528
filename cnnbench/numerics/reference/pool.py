"""F.max_pool{1,2,3}d and F.avg_pool{1,2,3}d with torch's window, ceil-mode, divisor and tie/NaN rules, and VJPs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import (
    BoolArray,
    FloatArray,
    IntArray,
    Size,
    _batched,
    _batched_grad,
    _f64,
    _ntuple,
    _outer,
    _plane_strides,
    _tap_slices,
    _trailing,
    _unbatch,
)
from cnnbench.numerics.reference._nd import NdGradient, NdOp
from cnnbench.numerics.reference.padding import _apply_pad, _spatial_pairs
from cnnbench.ops.arithmetic import pool_output_size

__all__ = [
    "avg_pool1d",
    "avg_pool1d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool3d",
    "avg_pool3d_backward",
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool3d",
    "max_pool3d_backward",
]


# ---------------------------------------------------------------------------------------------------------
# the max scan and its gradient, shared with adaptive max pooling
# ---------------------------------------------------------------------------------------------------------


def _running_max(
    out_shape: tuple[int, ...],
    first: IntArray,
    taps: Iterable[tuple[FloatArray, BoolArray | None, IntArray]],
) -> tuple[FloatArray, IntArray]:
    """Max and flat argmax per window, replicating torch's CPU kernel scan exactly.

    torch scans the window row-major from its first in-bounds tap, starting from (max=-inf, index=that
    tap, `first`) and replacing on `val > max or isnan(val)`: ties keep the first maximum, NaN propagates
    and the index is the *last* NaN in the window. `taps` yields each tap's (values, which windows it is
    in, or None for all, flat in-plane index).
    """
    index = np.broadcast_to(first, out_shape)
    best = np.full(out_shape, -np.inf, dtype=np.float64)
    for values, valid, flat in taps:
        take = (values > best) | np.isnan(values)
        if valid is not None:
            take = valid & take
        best = np.where(take, values, best)
        index = np.where(take, flat, index)
    return best, index.astype(np.int64)


def _scatter_to_index(grad_output: FloatArray, index: IntArray, shape: tuple[int, ...]) -> FloatArray:
    """Each output's gradient summed into the input position its flat in-plane `index` names.

    An index outside the plane (a window with no input tap) receives nothing. The reshapes name every size
    (no -1): an empty batch is valid in torch and has no size to infer.
    """
    n, c = shape[:2]
    plane = math.prod(shape[2:])
    windows = math.prod(index.shape[2:])
    go = grad_output.reshape(n * c, windows)
    idx = index.reshape(n * c, windows)
    ok = (idx >= 0) & (idx < plane)
    rows = np.broadcast_to(np.arange(n * c, dtype=np.int64)[:, None] * plane, idx.shape)
    grad = np.bincount((rows + idx)[ok], weights=go[ok], minlength=n * c * plane)
    return np.asarray(grad, dtype=np.float64).reshape(shape)


def _max_result(
    out: FloatArray, index: IntArray, unbatched: bool, return_indices: bool
) -> FloatArray | tuple[FloatArray, IntArray]:
    """A max pool's result: the values, and their flat argmax too when return_indices is set."""
    if return_indices:
        return _unbatch(out, unbatched), _unbatch(index, unbatched)
    return _unbatch(out, unbatched)


# ---------------------------------------------------------------------------------------------------------
# window geometry
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

    @property
    def out_shape(self) -> tuple[int, ...]:
        """The batched output shape (N, C, *out_sizes)."""
        return (*self.x.shape[:2], *self.out_sizes)

    def windows(self, xp: FloatArray) -> Iterator[tuple[tuple[int, ...], FloatArray]]:
        """Yield (tap, strided view of xp) for every kernel tap, in torch's row-major scan order."""
        for tap in np.ndindex(*self.kernel):
            yield tap, xp[_trailing(_tap_slices(tap, self.stride, self.dilation, self.out_sizes))]

    def grad_output(self, grad_output: npt.ArrayLike) -> FloatArray:
        return _batched_grad(grad_output, self.unbatched, self.out_shape)


# ---------------------------------------------------------------------------------------------------------
# max pooling
# ---------------------------------------------------------------------------------------------------------


def _max_pool_forward(g: _PoolGeometry) -> tuple[FloatArray, IntArray]:
    """_running_max over the -inf padded input; indices are flat into the unpadded plane."""
    xp = _apply_pad(g.x, _spatial_pairs(g.pads), "constant", -np.inf)
    plane = _plane_strides(g.sizes)
    # initial index: window start clipped into the input by whole dilation steps (torch's `while (i<0) i+=d`)
    first = [
        np.where(s < 0, s + ((-s + d - 1) // d) * d, s) for s, d in zip(g.starts, g.dilation, strict=True)
    ]
    first_index = _outer([f * st for f, st in zip(first, plane, strict=True)], np.add)

    def taps() -> Iterator[tuple[FloatArray, None, IntArray]]:
        for tap, values in g.windows(xp):
            flat = _outer(
                [(s + t * d) * st for s, t, d, st in zip(g.starts, tap, g.dilation, plane, strict=True)],
                np.add,
            )
            yield values, None, flat

    return _running_max(g.out_shape, first_index, taps())


class _MaxPool(NdOp):
    """F.{op}: -inf padding, torch's ceil-mode rule; indices are flat into each unpadded spatial plane."""

    pattern = "max_pool{nd}d"

    @overload
    def __call__(
        self,
        input: npt.ArrayLike,
        kernel_size: Size,
        stride: Size | None = ...,
        padding: Size = ...,
        dilation: Size = ...,
        ceil_mode: bool = ...,
        return_indices: Literal[False] = ...,
    ) -> FloatArray: ...
    @overload
    def __call__(
        self,
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
    def __call__(
        self,
        input: npt.ArrayLike,
        kernel_size: Size,
        stride: Size | None = ...,
        padding: Size = ...,
        dilation: Size = ...,
        ceil_mode: bool = ...,
        return_indices: bool = ...,
    ) -> FloatArray | tuple[FloatArray, IntArray]: ...
    def __call__(
        self,
        input: npt.ArrayLike,
        kernel_size: Size,
        stride: Size | None = None,
        padding: Size = 0,
        dilation: Size = 1,
        ceil_mode: bool = False,
        return_indices: bool = False,
    ) -> FloatArray | tuple[FloatArray, IntArray]:
        g = _PoolGeometry(self.nd, self.op, input, kernel_size, stride, padding, dilation, ceil_mode)
        out, index = _max_pool_forward(g)
        return _max_result(out, index, g.unbatched, return_indices)


class _MaxPoolBackward(NdGradient):
    """Gradient of {op}: each output's gradient goes to its argmax (torch's tie/NaN rule)."""

    pattern = "max_pool{nd}d"

    def __call__(
        self,
        grad_output: npt.ArrayLike,
        input: npt.ArrayLike,
        kernel_size: Size,
        stride: Size | None = None,
        padding: Size = 0,
        dilation: Size = 1,
        ceil_mode: bool = False,
        return_indices: bool = False,
    ) -> dict[str, FloatArray]:
        g = _PoolGeometry(self.nd, self.op, input, kernel_size, stride, padding, dilation, ceil_mode)
        go = g.grad_output(grad_output)
        _, index = _max_pool_forward(g)
        return {"input": _unbatch(_scatter_to_index(go, index, g.x.shape), g.unbatched)}


# ---------------------------------------------------------------------------------------------------------
# average pooling
# ---------------------------------------------------------------------------------------------------------


def _check_divisor(divisor_override: int | None) -> None:
    if divisor_override is not None and divisor_override == 0:
        raise ValueError("divisor_override must be non-zero")


def _avg_divisor(
    g: _PoolGeometry, count_include_pad: bool, divisor_override: int | None
) -> tuple[FloatArray, BoolArray]:
    """torch's per-window divisor and the windows that hold no input element (whose output is 0).

    Per dim: start = o*stride - pad; end = min(start + k, size + pad) (the padded extent, so ceil-mode
    overhang never counts); the count_include_pad divisor is end - start, otherwise the window is further
    clipped to [0, size). The nd divisor is the product over dims; divisor_override replaces it.
    """
    pool_lens, valid_lens = [], []
    for start, k, s, p in zip(g.starts, g.kernel, g.sizes, g.padding, strict=True):
        end = np.minimum(start + k, s + p)
        pool_lens.append((end - start).astype(np.float64))
        valid_lens.append((np.minimum(end, s) - np.maximum(start, 0)).astype(np.float64))
    empty = _outer([v <= 0 for v in valid_lens], np.logical_or)
    divisor = _outer(pool_lens if count_include_pad else valid_lens, np.multiply)
    if divisor_override is not None:
        divisor = np.full_like(divisor, float(divisor_override))
    return divisor, empty


def _avg_pool_forward(g: _PoolGeometry, count_include_pad: bool, divisor_override: int | None) -> FloatArray:
    xp = _apply_pad(g.x, _spatial_pairs(g.pads), "constant", 0.0)
    total = np.zeros(g.out_shape, dtype=np.float64)
    for _, values in g.windows(xp):
        total += values
    divisor, empty = _avg_divisor(g, count_include_pad, divisor_override)
    return np.where(empty, 0.0, total / np.where(empty, 1.0, divisor))


def _avg_pool_backward(
    g: _PoolGeometry, grad_output: FloatArray, count_include_pad: bool, divisor_override: int | None
) -> FloatArray:
    divisor, empty = _avg_divisor(g, count_include_pad, divisor_override)
    share = np.where(empty, 0.0, grad_output / np.where(empty, 1.0, divisor))
    padded = tuple(s + left + right for s, (left, right) in zip(g.sizes, g.pads, strict=True))
    grad_xp = np.zeros((*g.x.shape[:2], *padded), dtype=np.float64)
    for tap in np.ndindex(*g.kernel):
        grad_xp[_trailing(_tap_slices(tap, g.stride, g.dilation, g.out_sizes))] += share
    crop = _trailing((slice(left, left + s) for s, (left, _) in zip(g.sizes, g.pads, strict=True)))
    return np.ascontiguousarray(grad_xp[crop])


class _AvgPool(NdOp):
    """F.{op} with torch's divisor rule (see _avg_divisor): windows clipped to the padded extent (or the
    input); divisor_override, which F.avg_pool1d lacks, is an extension there."""

    pattern = "avg_pool{nd}d"

    def __call__(
        self,
        input: npt.ArrayLike,
        kernel_size: Size,
        stride: Size | None = None,
        padding: Size = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> FloatArray:
        _check_divisor(divisor_override)
        g = _PoolGeometry(self.nd, self.op, input, kernel_size, stride, padding, 1, ceil_mode)
        return _unbatch(_avg_pool_forward(g, count_include_pad, divisor_override), g.unbatched)


class _AvgPoolBackward(NdGradient):
    """Gradient of {op}: each output's gradient / divisor spread over its in-input window."""

    pattern = "avg_pool{nd}d"

    def __call__(
        self,
        grad_output: npt.ArrayLike,
        input: npt.ArrayLike,
        kernel_size: Size,
        stride: Size | None = None,
        padding: Size = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> dict[str, FloatArray]:
        _check_divisor(divisor_override)
        g = _PoolGeometry(self.nd, self.op, input, kernel_size, stride, padding, 1, ceil_mode)
        go = g.grad_output(grad_output)
        grad = _avg_pool_backward(g, go, count_include_pad, divisor_override)
        return {"input": _unbatch(grad, g.unbatched)}


max_pool1d = _MaxPool(1)
max_pool2d = _MaxPool(2)
max_pool3d = _MaxPool(3)
max_pool1d_backward = _MaxPoolBackward(1)
max_pool2d_backward = _MaxPoolBackward(2)
max_pool3d_backward = _MaxPoolBackward(3)
avg_pool1d = _AvgPool(1)
avg_pool2d = _AvgPool(2)
avg_pool3d = _AvgPool(3)
avg_pool1d_backward = _AvgPoolBackward(1)
avg_pool2d_backward = _AvgPoolBackward(2)
avg_pool3d_backward = _AvgPoolBackward(3)

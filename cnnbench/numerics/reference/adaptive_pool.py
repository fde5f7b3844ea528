"""F.adaptive_avg_pool{1,2,3}d and F.adaptive_max_pool{1,2,3}d (torch's window and tie/NaN rules), and VJPs."""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Sequence
from typing import Any, Generic, Literal, TypeVar, overload

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import (
    AdaptiveSize,
    BoolArray,
    FloatArray,
    IntArray,
    _batched,
    _batched_grad,
    _f64,
    _outer,
    _plane_strides,
    _trailing,
    _unbatch,
)
from cnnbench.numerics.reference._nd import NdGradient, NdOp
from cnnbench.numerics.reference.pool import _max_result, _running_max, _scatter_to_index

__all__ = [
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
]

_OutputSize = TypeVar("_OutputSize")
"""The type of output_size: int | Sequence[int] in 1d (as torch), AdaptiveSize (None keeps a size) in 2d/3d."""


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

    @property
    def out_shape(self) -> tuple[int, ...]:
        """The batched output shape (N, C, *out_sizes)."""
        return (*self.x.shape[:2], *self.out_sizes)

    def taps(self) -> Iterator[tuple[FloatArray, BoolArray, IntArray]]:
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

    def grad_output(self, grad_output: npt.ArrayLike) -> FloatArray:
        return _batched_grad(grad_output, self.unbatched, self.out_shape)


def _adaptive_avg(g: _AdaptiveGeometry) -> FloatArray:
    total = np.zeros(g.out_shape, dtype=np.float64)
    for values, valid, _ in g.taps():
        total += np.where(valid, values, 0.0)
    return total / g.count()


def _adaptive_avg_backward(g: _AdaptiveGeometry, go: FloatArray) -> FloatArray:
    """Each output's gradient / its window size, summed into every input position of its window."""
    share = go / g.count()
    n, c = g.x.shape[:2]
    plane = math.prod(g.sizes)
    rows = (np.arange(n * c, dtype=np.int64) * plane).reshape(n, c, *([1] * len(g.sizes)))
    grad = np.zeros(n * c * plane, dtype=np.float64)
    for _, valid, flat in g.taps():
        where = np.broadcast_to(valid, share.shape)
        grad += np.bincount((rows + flat)[where], weights=share[where], minlength=grad.size)
    return grad.reshape(g.x.shape)


def _adaptive_max(g: _AdaptiveGeometry) -> tuple[FloatArray, IntArray]:
    """Max pooling's scan rule (_running_max) over each window, from its first tap."""
    plane = _plane_strides(g.sizes)
    first = _outer([s * st for s, st in zip(g.starts, plane, strict=True)], np.add)
    return _running_max(g.out_shape, first, g.taps())


class _AdaptiveAvgPool(NdOp, Generic[_OutputSize]):
    """F.{op}: window i covers [floor(i*L/out), ceil((i+1)*L/out)); in 2d/3d None keeps a size."""

    pattern = "adaptive_avg_pool{nd}d"

    def __call__(self, input: npt.ArrayLike, output_size: _OutputSize) -> FloatArray:
        g = _AdaptiveGeometry(self.nd, self.op, input, output_size)
        return _unbatch(_adaptive_avg(g), g.unbatched)


class _AdaptiveAvgPoolBackward(NdGradient, Generic[_OutputSize]):
    """Gradient of {op}."""

    pattern = "adaptive_avg_pool{nd}d"

    def __call__(
        self, grad_output: npt.ArrayLike, input: npt.ArrayLike, output_size: _OutputSize
    ) -> dict[str, FloatArray]:
        g = _AdaptiveGeometry(self.nd, self.op, input, output_size)
        grad = _adaptive_avg_backward(g, g.grad_output(grad_output))
        return {"input": _unbatch(grad, g.unbatched)}


class _AdaptiveMaxPool(NdOp, Generic[_OutputSize]):
    """F.{op} with torch's scan/tie/NaN rule; indices are flat into each spatial plane of the input."""

    pattern = "adaptive_max_pool{nd}d"

    @overload
    def __call__(
        self, input: npt.ArrayLike, output_size: _OutputSize, return_indices: Literal[False] = ...
    ) -> FloatArray: ...
    @overload
    def __call__(
        self, input: npt.ArrayLike, output_size: _OutputSize, return_indices: Literal[True]
    ) -> tuple[FloatArray, IntArray]: ...
    @overload
    def __call__(
        self, input: npt.ArrayLike, output_size: _OutputSize, return_indices: bool = ...
    ) -> FloatArray | tuple[FloatArray, IntArray]: ...
    def __call__(
        self, input: npt.ArrayLike, output_size: _OutputSize, return_indices: bool = False
    ) -> FloatArray | tuple[FloatArray, IntArray]:
        g = _AdaptiveGeometry(self.nd, self.op, input, output_size)
        out, index = _adaptive_max(g)
        return _max_result(out, index, g.unbatched, return_indices)


class _AdaptiveMaxPoolBackward(NdGradient, Generic[_OutputSize]):
    """Gradient of {op} (routed to the argmax)."""

    pattern = "adaptive_max_pool{nd}d"

    def __call__(
        self,
        grad_output: npt.ArrayLike,
        input: npt.ArrayLike,
        output_size: _OutputSize,
        return_indices: bool = False,
    ) -> dict[str, FloatArray]:
        g = _AdaptiveGeometry(self.nd, self.op, input, output_size)
        go = g.grad_output(grad_output)
        _, index = _adaptive_max(g)
        return {"input": _unbatch(_scatter_to_index(go, index, g.x.shape), g.unbatched)}


adaptive_avg_pool1d: _AdaptiveAvgPool[int | Sequence[int]] = _AdaptiveAvgPool(1)
adaptive_avg_pool2d: _AdaptiveAvgPool[AdaptiveSize] = _AdaptiveAvgPool(2)
adaptive_avg_pool3d: _AdaptiveAvgPool[AdaptiveSize] = _AdaptiveAvgPool(3)
adaptive_avg_pool1d_backward: _AdaptiveAvgPoolBackward[int | Sequence[int]] = _AdaptiveAvgPoolBackward(1)
adaptive_avg_pool2d_backward: _AdaptiveAvgPoolBackward[AdaptiveSize] = _AdaptiveAvgPoolBackward(2)
adaptive_max_pool1d: _AdaptiveMaxPool[int | Sequence[int]] = _AdaptiveMaxPool(1)
adaptive_max_pool2d: _AdaptiveMaxPool[AdaptiveSize] = _AdaptiveMaxPool(2)
adaptive_max_pool3d: _AdaptiveMaxPool[AdaptiveSize] = _AdaptiveMaxPool(3)
adaptive_max_pool1d_backward: _AdaptiveMaxPoolBackward[int | Sequence[int]] = _AdaptiveMaxPoolBackward(1)
adaptive_max_pool2d_backward: _AdaptiveMaxPoolBackward[AdaptiveSize] = _AdaptiveMaxPoolBackward(2)

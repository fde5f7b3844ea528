"""The array types of the reference and the argument and index helpers that every op family shares."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from functools import reduce
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "AdaptiveSize",
    "BoolArray",
    "FloatArray",
    "IntArray",
    "Size",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Size = int | Sequence[int]
"""An int (same value in every spatial dim) or one int per spatial dim, like torch's _size_any_t."""
AdaptiveSize = int | Sequence[int | None] | None
"""An adaptive pool's output_size: an int or one entry per spatial dim; None keeps that input size."""


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


def _unbatch(out: npt.NDArray[Any], unbatched: bool) -> npt.NDArray[Any]:
    """Undo _batched on a result: drop the batch dim that an unbatched input was given."""
    return out[0] if unbatched else out


def _batched_grad(grad_output: npt.ArrayLike, unbatched: bool, expected: tuple[int, ...]) -> FloatArray:
    """The upstream gradient, batched like the input, checked against the forward's batched output shape.

    Checked rather than broadcast: a gradient of the wrong shape would otherwise spread silently over
    the windows and give plausible, wrong results.
    """
    go = _f64(grad_output)
    if unbatched:
        go = go[None]
    if go.shape != expected:
        raise ValueError(f"grad_output has shape {go.shape}, expected {expected}")
    return go


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

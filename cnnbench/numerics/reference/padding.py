"""F.pad, and the padded-index machinery (forward and its scatter-add VJP) that convolution and pooling pad with."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import BoolArray, FloatArray, IntArray, _f64

__all__ = ["pad"]

#: F.pad's modes, in torch's order (its error message lists them so).
_PAD_MODES = ("constant", "reflect", "replicate", "circular")
#: nn.ConvNd's padding_mode names -> the F.pad mode it pads with before convolving.
_PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


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
        # torch crops negative pads first and wraps the positive ones within what is left
        lo, hi = max(-left, 0), n - max(-right, 0)
        if hi <= lo:
            raise ValueError(f"circular padding ({left}, {right}) crops all of dimension {n}")
        idx = lo + np.mod(j - lo, hi - lo)
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
    """Per-spatial-dim (left, right) pads as pairs for every axis of an (N, C, *spatial) array."""
    return [(0, 0), (0, 0), *pads]


def _padding_mode(padding_mode: str) -> str:
    """nn.ConvNd's padding_mode as the F.pad mode it stands for."""
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {tuple(_PADDING_MODES)}, got {padding_mode!r}")
    return _PADDING_MODES[padding_mode]

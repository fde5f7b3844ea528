"""torch.flatten and torch.reshape (no arithmetic, so no VJP is needed); torch.matmul, add and mul."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, _f64

__all__ = ["add", "flatten", "matmul", "mul", "reshape"]


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


def reshape(input: npt.ArrayLike, shape: Sequence[int]) -> FloatArray:
    """torch.reshape, one -1 allowed."""
    return _f64(input).reshape(tuple(int(v) for v in shape))


def matmul(input: npt.ArrayLike, other: npt.ArrayLike) -> FloatArray:
    """torch.matmul: NumPy's matmul has the same 1-D, 2-D and broadcast batch rules."""
    return np.asarray(np.matmul(_f64(input), _f64(other)), dtype=np.float64)


def add(input: npt.ArrayLike, other: npt.ArrayLike | float, alpha: float = 1.0) -> FloatArray:
    """torch.add: input + alpha * other, broadcast."""
    return np.asarray(_f64(input) + alpha * _f64(other), dtype=np.float64)


def mul(input: npt.ArrayLike, other: npt.ArrayLike | float) -> FloatArray:
    """torch.mul: input * other, broadcast."""
    return np.asarray(_f64(input) * _f64(other), dtype=np.float64)

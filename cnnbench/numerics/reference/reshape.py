"""torch.flatten: merging a run of dims into one (no arithmetic, so no VJP is needed)."""

from __future__ import annotations

import math

import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, _f64

__all__ = ["flatten"]


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

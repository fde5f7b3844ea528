"""F.affine_grid: the sampling grid of an affine transform (2-D and 3-D), in normalised [-1, 1] coordinates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, _f64

__all__ = ["affine_grid"]


def _base(n: int, align_corners: bool) -> FloatArray:
    """The normalised coordinates of n samples: the pixel centres (align_corners False) or the corner pixels."""
    if n <= 1:
        return np.zeros(max(n, 1))
    line = np.linspace(-1.0, 1.0, n)
    return line if align_corners else line * (n - 1) / n


def affine_grid(theta: npt.ArrayLike, size: Sequence[int], align_corners: bool | None = None) -> FloatArray:
    """F.affine_grid: theta (N, 2, 3) and size (N, C, H, W) give (N, H, W, 2) = theta @ (x, y, 1); theta
    (N, 3, 4) and size (N, C, D, H, W) give (N, D, H, W, 3) = theta @ (x, y, z, 1). align_corners None is False, as in torch."""
    t = _f64(theta)
    size = [int(v) for v in size]
    spatial = size[2:][::-1]  # x (width) first
    nd = len(spatial)
    if nd not in (2, 3) or t.shape[1:] != (nd, nd + 1) or t.shape[0] != size[0]:
        raise ValueError(f"affine_grid: theta of shape {list(t.shape)} does not fit size {size}")
    axes = [_base(n, bool(align_corners)) for n in spatial]
    mesh = np.meshgrid(*axes[::-1], indexing="ij")[::-1]  # arrays over (D,) H, W holding x, y (, z)
    base = np.stack([*mesh, np.ones_like(mesh[0])], axis=-1)
    return np.asarray(np.einsum("...k,nik->n...i", base, t), dtype=np.float64)

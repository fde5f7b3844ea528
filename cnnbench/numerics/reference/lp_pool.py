"""F.lp_pool1d/2d: power-average pooling, (sum of x^p over each window)^(1/p), written as torch computes it."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from cnnbench.numerics.reference import pool
from cnnbench.numerics.reference._common import FloatArray, Size, _f64, _ntuple
from cnnbench.numerics.reference._nd import NdOp

__all__ = ["lp_pool1d", "lp_pool2d"]


class _LpPool(NdOp):
    """F.{op}: avg_pool{nd}d(x^p) times the kernel area, then sign(s) * relu(|s|) to the power 1/p. In ceil mode a
    window cut by the edge is averaged over its cells inside and still multiplied by the whole kernel area, as in
    torch, so it is scaled up rather than summed."""

    pattern = "lp_pool{nd}d"

    def __call__(
        self, input: npt.ArrayLike, norm_type: float, kernel_size: Size, stride: Size | None = None,
        ceil_mode: bool = False,
    ) -> FloatArray:  # fmt: skip
        x = _f64(input)
        avg = pool.avg_pool1d if self.nd == 1 else pool.avg_pool2d
        s = avg(x**norm_type, kernel_size, stride, 0, ceil_mode)
        area = math.prod(_ntuple(kernel_size, self.nd, "kernel_size"))
        s = np.sign(s) * np.maximum(np.abs(s), 0.0) * area
        return np.asarray(s ** (1.0 / norm_type), dtype=np.float64)


lp_pool1d = _LpPool(1)
lp_pool2d = _LpPool(2)

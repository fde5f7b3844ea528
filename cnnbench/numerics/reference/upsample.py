"""F.upsample, F.upsample_nearest and F.upsample_bilinear: interpolate under its deprecated names."""

from __future__ import annotations

from collections.abc import Sequence

import numpy.typing as npt

from cnnbench.numerics.reference._common import FloatArray, Size
from cnnbench.numerics.reference.resample import interpolate

__all__ = ["upsample", "upsample_bilinear", "upsample_nearest"]


def upsample(
    input: npt.ArrayLike, size: Size | None = None, scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest", align_corners: bool | None = None,
) -> FloatArray:  # fmt: skip
    """F.upsample: F.interpolate with the same arguments."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(
    input: npt.ArrayLike, size: Size | None = None, scale_factor: float | Sequence[float] | None = None
) -> FloatArray:
    """F.upsample_nearest: interpolate with mode="nearest"."""
    return interpolate(input, size, scale_factor, "nearest")


def upsample_bilinear(
    input: npt.ArrayLike, size: Size | None = None, scale_factor: float | Sequence[float] | None = None
) -> FloatArray:
    """F.upsample_bilinear: interpolate with mode="bilinear" and align_corners=True."""
    return interpolate(input, size, scale_factor, "bilinear", True)

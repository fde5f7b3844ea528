"""Floating-point precision of each dtype: significand bits and unit roundoff (no torch)."""

from __future__ import annotations

__all__ = ["PRECISION_BITS", "UNIT_ROUNDOFF"]

#: Significand bits p (the implicit one included): every integer of magnitude <= 2^p is exact in the dtype.
PRECISION_BITS: dict[str, int] = {"float64": 53, "float32": 24, "float16": 11, "bfloat16": 8}
#: Unit roundoff u = 2^-p of each floating dtype: the largest relative error of rounding one real number to it.
UNIT_ROUNDOFF: dict[str, float] = {dtype: 2.0**-bits for dtype, bits in PRECISION_BITS.items()}

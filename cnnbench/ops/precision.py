"""Floating-point precision of each dtype and of each compute precision a backend may use: significand bits
and unit roundoff (no torch).

A variant's *compute precision* is what the backend really multiplies in. For float32 convolutions and
matmuls it is set by torch's flags: ``ieee`` (float32 itself), ``tf32`` (TensorFloat-32: float32's exponent,
a 10-bit mantissa, so 11 significand bits and unit roundoff 2^-11; the default of cuDNN convolutions since
Ampere) or ``bf16`` (oneDNN on CPUs with AMX, and ``torch.set_float32_matmul_precision("medium")``). For every
other dtype the compute precision is the dtype itself. cnnbench.device reads the flags; this module only knows
the numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from cnnbench.ops.catalog import traits

__all__ = [
    "COMPUTE_BITS",
    "FP32_PRECISIONS",
    "PRECISION_BITS",
    "UNIT_ROUNDOFF",
    "Fp32Precision",
    "MathKind",
    "compute_unit_roundoff",
    "exact_bits",
    "input_roundoff",
    "math_kind",
    "math_kind_of",
    "narrows",
    "planned_precision",
]

#: Significand bits p (the implicit one included): every integer of magnitude <= 2^p is exact in the dtype.
PRECISION_BITS: dict[str, int] = {"float64": 53, "float32": 24, "float16": 11, "bfloat16": 8}
#: Unit roundoff u = 2^-p of each floating dtype: the largest relative error of rounding one real number to it.
UNIT_ROUNDOFF: dict[str, float] = {dtype: 2.0**-bits for dtype, bits in PRECISION_BITS.items()}
#: Significand bits the inputs of a float32 product are rounded to under each reduced compute precision.
COMPUTE_BITS: dict[str, int] = {"tf32": 11, "bf16": 8}

Fp32Precision = Literal["ieee", "tf32", "default"]
"""What ``--fp32-precision`` and a case's ``fp32_precision:`` may pin: IEEE float32, TF32, or torch's flags
as they are."""
FP32_PRECISIONS: tuple[str, ...] = ("ieee", "tf32", "default")

MathKind = Literal["conv", "matmul", "none"]
"""Which of torch's precision flags governs an op: cuDNN/oneDNN convolution, cuBLAS/oneDNN matmul, or none
(elementwise, pooling and normalisation kernels compute in the dtype)."""


def math_kind(op: str | None) -> MathKind:
    """The precision flag that governs op (a functional op name of the catalog)."""
    family = traits(op).family
    if family in ("conv", "conv_transpose"):
        return "conv"
    if family == "linear" or op == "matmul":
        return "matmul"
    return "none"


def planned_precision(op: str, dtype: str, devices: Iterable[str], pinned: str | None) -> str | None:
    """The narrowest compute precision a case's float32 op may run in on its devices, known before running:
    the case's pin, else tf32 for convolutions on any accelerator (cuDNN's default since Ampere); None
    where dtype computes in itself."""
    if dtype != "float32" or math_kind(op) == "none" or pinned == "ieee":
        return None
    if pinned == "tf32":
        return "tf32"
    on_accelerator = any(d.partition(":")[0] not in ("cpu", "meta") for d in devices)
    return "tf32" if on_accelerator and math_kind(op) == "conv" else None


def math_kind_of(ops: Iterable[str | None]) -> MathKind:
    """The flag governing a stack of ops: conv if any op convolves, else matmul if any multiplies."""
    kinds = {math_kind(op) for op in ops}
    return "conv" if "conv" in kinds else "matmul" if "matmul" in kinds else "none"


def narrows(dtype: str, compute_precision: str | None) -> bool:
    """True when compute_precision rounds dtype's inputs to fewer significand bits than dtype has. The reduced
    precisions (tf32, bf16) are modes of float32 kernels only: float64 and the half types compute in themselves."""
    bits = COMPUTE_BITS.get(compute_precision or "")
    return bits is not None and dtype == "float32" and bits < PRECISION_BITS[dtype]


def input_roundoff(dtype: str, compute_precision: str | None) -> float:
    """The unit roundoff the backend rounds dtype's inputs with before multiplying: 2^-11 for float32 under
    tf32, 0 where the inputs enter the products as they are (IEEE, or any compute precision no narrower)."""
    if not narrows(dtype, compute_precision):
        return 0.0
    return 2.0 ** -COMPUTE_BITS[compute_precision or ""]


def compute_unit_roundoff(dtype: str, compute_precision: str | None) -> float | None:
    """The unit roundoff of the precision products are formed in: the compute precision's where it narrows
    dtype, else dtype's own; None for integer dtypes."""
    if dtype not in UNIT_ROUNDOFF:
        return None
    return input_roundoff(dtype, compute_precision) or UNIT_ROUNDOFF[dtype]


def exact_bits(dtype: str, compute_precision: str | None) -> int | None:
    """Significand bits within which an operand's integers enter the products exactly under
    compute_precision: the fewer of the dtype's and the compute precision's (tf32 holds integers up to
    2^11); None for integer dtypes. (Partial sums still accumulate in the dtype's own precision.)"""
    bits = PRECISION_BITS.get(dtype)
    if bits is None:
        return None
    if narrows(dtype, compute_precision):
        return COMPUTE_BITS[compute_precision or ""]
    return bits

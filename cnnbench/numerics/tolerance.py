"""Tolerances: torch's defaults per dtype for literal expected values, a case's override, and the derived
tolerance against the float64 reference per op family and dtype, scaled with the reduction length K."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnbench.casefile.format import ToleranceSpec
from cnnbench.ops.catalog import traits
from cnnbench.ops.exact import SELECT_OPS
from cnnbench.ops.precision import UNIT_ROUNDOFF

__all__ = [
    "ACCUMULATOR",
    "DEFAULT_TOLERANCES",
    "SAFETY",
    "ZERO",
    "Tolerance",
    "reference_tolerance",
    "tolerance_for",
    "with_override",
]


@dataclass(frozen=True)
class Tolerance:
    """A result element passes when ``|got - expected| <= atol + rtol * |expected|``."""

    atol: float
    rtol: float


#: torch.testing.assert_close's defaults per dtype; integer and bool results are compared exactly.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(atol=1e-7, rtol=1e-7),
    "float32": Tolerance(atol=1e-5, rtol=1.3e-6),
    "float16": Tolerance(atol=1e-5, rtol=1e-3),
    "bfloat16": Tolerance(atol=1e-5, rtol=1.6e-2),
    "complex64": Tolerance(atol=1e-5, rtol=1.3e-6),
    "complex128": Tolerance(atol=1e-7, rtol=1e-7),
}
#: Zero tolerance: integer results, and what exact-by-construction inputs are checked with.
ZERO = Tolerance(atol=0.0, rtol=0.0)


def with_override(base: Tolerance, dtype: str, override: ToleranceSpec | None) -> Tolerance:
    """base with a case's ``tolerance:`` key (flat, or per dtype) laid over it: a key it gives wins."""
    spec = override.get(dtype) if isinstance(override, dict) else override
    if spec is None:
        return base
    return Tolerance(
        atol=base.atol if spec.atol is None else spec.atol, rtol=base.rtol if spec.rtol is None else spec.rtol
    )


def tolerance_for(dtype: str, override: ToleranceSpec | None = None) -> Tolerance:
    """The tolerance for a literal expected value of dtype: the case's override over torch's default.

    Integer and bool results compare exactly, whatever the case says.
    """
    if dtype not in DEFAULT_TOLERANCES:
        return ZERO
    return with_override(DEFAULT_TOLERANCES[dtype], dtype, override)


#: The dtype sums are accumulated in: half types accumulate in float32 on the CPU and in cuDNN/cuBLAS (their
#: default math mode), so their sums grow float32 error while their inputs and outputs round to the half type.
ACCUMULATOR: dict[str, str] = {
    "float64": "float64",
    "float32": "float32",
    "float16": "float32",
    "bfloat16": "float32",
}
#: Multiplies every modelled error term. The model's terms are expected sizes; the worst measured error in
#: docs/tolerances.md's sweep is 0.88 of the model (float32 conv2d, K = 4608, positive data), so 4 leaves 4.5x
#: head room for other kernels and data, while a 1e-4 relative error in a float32 conv at that K is still 6x
#: over the tolerance.
SAFETY = 4.0


def reference_tolerance(
    op: str, dtype: str, k: int, scale: float, input_scale: float = 0.0, *, exact_data_movement: bool = True
) -> Tolerance:
    """The tolerance for a dtype result of op against the float64 reference.

    k is the reduction length (terms summed into one output element), scale the largest magnitude of the
    reference result and input_scale that of the inputs. With u the dtype's unit roundoff and u_acc its
    accumulator's::

        rtol = SAFETY * u
        atol = SAFETY * (u + u_acc * sqrt(k)) * scale + SAFETY * 2 * u * input_scale   (input-sensitive ops)

    The u terms are the rounding of the inputs and of the output; u_acc * sqrt(k) is the probabilistic bound on
    a k-term sum's accumulated error (Higham and Mary 2019), relative to the output's scale. Ops that only
    select or move values (cnnbench.ops.exact.SELECT_OPS: max pooling, relu, flatten, pad) round nothing but their
    inputs: rtol = u and atol = 0 (zero in float64), unless exact_data_movement is False (their gradients sum).
    Integer dtypes compare exactly.
    """
    if dtype not in UNIT_ROUNDOFF:
        return ZERO
    u = UNIT_ROUNDOFF[dtype]
    if exact_data_movement and op in SELECT_OPS:
        return ZERO if dtype == "float64" else Tolerance(atol=0.0, rtol=u)
    u_acc = UNIT_ROUNDOFF[ACCUMULATOR[dtype]]
    atol = SAFETY * (u + u_acc * math.sqrt(max(k, 1))) * abs(scale)
    if traits(op).input_sensitive:
        atol += SAFETY * 2.0 * u * abs(input_scale)
    return Tolerance(atol=atol, rtol=SAFETY * u)

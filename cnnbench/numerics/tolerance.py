"""Tolerances: torch's defaults per dtype for literal expected values, a case's override, and the derived
tolerance against the float64 reference per op family and dtype, scaled with the reduction length K."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnbench.casefile.format import ToleranceSpec
from cnnbench.ops.catalog import traits
from cnnbench.ops.exact import SELECT_OPS
from cnnbench.ops.precision import UNIT_ROUNDOFF, input_roundoff, narrows

__all__ = [
    "ACCUMULATOR",
    "DEFAULT_TOLERANCES",
    "REDUCED_DEFAULTS",
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


#: The literal-value default of a reduced compute precision: TF32 has float16's significand (11 bits), so a
#: float32 result computed in TF32 gets float16's defaults; bf16 compute gets bfloat16's.
REDUCED_DEFAULTS: dict[str, str] = {"tf32": "float16", "bf16": "bfloat16"}


def tolerance_for(
    dtype: str, override: ToleranceSpec | None = None, compute_precision: str | None = None
) -> Tolerance:
    """The tolerance for a literal expected value of dtype: the case's override over torch's default (that of
    the narrower dtype with the compute precision's significand, where compute_precision narrows dtype).

    Integer and bool results compare exactly, whatever the case says.
    """
    if dtype not in DEFAULT_TOLERANCES:
        return ZERO
    base = dtype
    if narrows(dtype, compute_precision):
        base = REDUCED_DEFAULTS[compute_precision or ""]
    return with_override(DEFAULT_TOLERANCES[base], dtype, override)


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
    op: str,
    dtype: str,
    k: int,
    scale: float,
    input_scale: float = 0.0,
    *,
    exact_data_movement: bool = True,
    compute_precision: str | None = None,
    term_norm: float | None = None,
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

    A compute precision narrower than dtype (float32 under tf32: u_c = 2^-11) rounds both factors of every
    product before the float32 accumulation: term i of an output's sum, x_i = a_i * w_i, becomes
    x_i (1 + eta_i) with |eta_i| <= 2 u_c, independent and mean zero from term to term. Hoeffding's inequality
    (the argument of Higham and Mary's probabilistic bound) gives ``|sum x_i eta_i| <= lambda 2 u_c ||x||_2``
    except with probability 2 exp(-lambda^2 / 2); with lambda = SAFETY::

        atol += SAFETY * 2 * u_c * term_norm

    term_norm is the largest ||x||_2 over the output's elements: sqrt of the op applied to the squared
    operands, which the float64 reference computes (cnnbench.numerics.oracle). It grows as sqrt(k) times the
    terms' size, the model's reduction-length scaling. Where it is not known (gradients, stacks of layers)
    sqrt(k) * scale stands in, which is larger for any sum without heavy cancellation.
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
    rtol = SAFETY * u
    u_c = input_roundoff(dtype, compute_precision)
    if u_c:
        norm = math.sqrt(max(k, 1)) * abs(scale) if term_norm is None else abs(term_norm)
        atol += SAFETY * 2.0 * u_c * norm
    return Tolerance(atol=atol, rtol=rtol)

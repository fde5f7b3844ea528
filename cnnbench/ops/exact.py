"""The exact-by-construction rule (``fill: exact``) of an op: which integers, how sparse, and when exactness is
impossible in a dtype. Plain names, args and shapes; no torch.

cnnbench.casefile.exact applies it to a case's tensor specs when the file is loaded (a case that cannot be exact
is refused there); the values themselves are drawn by cnnbench.numerics.fill.exact_integers following an
ExactPlan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cnnbench.ops.catalog import ops_where
from cnnbench.ops.lowering import lower_module, reduction_length
from cnnbench.ops.precision import PRECISION_BITS, exact_bits, narrows

__all__ = [
    "AVERAGE_OPS",
    "BIAS_RANGE",
    "DATA_RANGE",
    "EXACT_FILL_OPS",
    "SELECT_OPS",
    "SELECT_RANGE",
    "SUM_OPS",
    "WEIGHT_RANGE",
    "ZERO_TOLERANCE_DTYPES",
    "ExactPlan",
    "Operand",
    "exact_op",
    "plan_exact",
]

#: Ops that sum products of their inputs (with a bias): exact when every partial sum is an integer <= 2^p.
SUM_OPS: frozenset[str] = ops_where(lambda t: t.exactness == "sum")
#: Ops whose result is one of their inputs (or zero): integer inputs give integer results, nothing rounds.
SELECT_OPS: frozenset[str] = ops_where(lambda t: t.exactness == "select")
#: Ops that sum integers and divide once: the sum is exact, the quotient rounds once (checked with the
#: scaled tolerance, not zero).
AVERAGE_OPS: frozenset[str] = ops_where(lambda t: t.exactness == "average")
#: Every op fill: exact applies to.
EXACT_FILL_OPS: frozenset[str] = SUM_OPS | SELECT_OPS | AVERAGE_OPS
#: Dtypes in which exact fill makes SUM_OPS and SELECT_OPS compare with zero tolerance. Half types get the
#: scaled tolerance: accelerator kernels may transform half inputs (Winograd, FFT), which exact integers do
#: not survive, and a half-precision claim is about the scaled error anyway.
ZERO_TOLERANCE_DTYPES: frozenset[str] = frozenset({"float64", "float32"})
#: Generated data, weights and biases of sums have magnitudes 1..4 (random signs, no zeros), or 1..2, or 1:
#: the widest range whose densest sums stay exact. Small enough that products stay tiny next to 2^p, with
#: enough values that a wrong tap, offset or sign changes the sum.
DATA_RANGE = 4
#: The same bound for weights.
WEIGHT_RANGE = 4
#: And for biases.
BIAS_RANGE = 4
_RANGES = (DATA_RANGE, 2, 1)
#: Data of max pooling, relu, padding and reshapes lies in [-64, 64]: no sums, so a wider range keeps ties in
#: a pooling window rare while staying exact even in bfloat16 (integers up to 2^8).
SELECT_RANGE = 64


@dataclass(frozen=True)
class Operand:
    """One tensor an exact-fill call consumes."""

    name: str
    """Where the case sets it: inputs.x, state.weight, or the module parameter's name."""
    role: str
    """data, weight or bias (the positions of a sum op), data for every other op."""
    shape: tuple[int, ...]
    generated: bool
    """True: its values are replaced by exact integers. False: kept as written (a literal or a constant)."""
    max_abs: float | None = None
    """The largest magnitude of a kept tensor; None if it cannot be known before running."""


@dataclass(frozen=True)
class ExactPlan:
    """How to draw a case's exact integers in one dtype, and the bound that makes every partial sum exact."""

    dtype: str
    op: str
    k: int
    """Terms summed into one output element."""
    data_range: int
    """Generated data (and SELECT_OPS values) have magnitudes 1..data_range, random signs."""
    weight_range: int
    bias_range: int
    nonzeros: int | None
    """Generated weights: non-zeros per output element's filter; None: dense."""
    bound: int
    """2^p: the largest integer magnitude below which every integer is exact in the dtype."""
    largest: float
    """The largest magnitude any partial sum can reach under this plan (<= bound)."""

    @property
    def zero_tolerance(self) -> bool:
        """True when the result must equal the reference exactly."""
        return self.dtype in ZERO_TOLERANCE_DTYPES and self.op in SUM_OPS | SELECT_OPS


def exact_op(op: str | None, module: str | None, args: Mapping[str, Any], mode: str) -> str:
    """The functional op an exact-fill case computes; ValueError if exact fill does not apply to it."""
    if op is None and module is None:
        raise ValueError("exact fill needs an op or a module case (not layers)")
    name = op if op is not None else lower_module(module or "", args, mode).op
    if name not in EXACT_FILL_OPS:
        shown = op or f"{module} ({name})"
        raise ValueError(
            f"exact fill cannot make {shown} exact: it applies to sums of products ({', '.join(sorted(SUM_OPS))}), "
            f"ops that select or move values ({', '.join(sorted(SELECT_OPS))}) and averages "
            f"({', '.join(sorted(AVERAGE_OPS))})"
        )
    return name


def _check_compute_precision(
    op: str, operands: Sequence[Operand], dtype: str, compute_precision: str | None
) -> None:
    """Under a compute precision narrower than dtype (float32 in tf32) every operand of a sum enters the
    products rounded to its significand: a written operand must hold integers within 2^bits."""
    if op not in SUM_OPS or not narrows(dtype, compute_precision):
        return
    bits = exact_bits(dtype, compute_precision) or 0
    for o in operands:
        if not o.generated and (o.max_abs or 0.0) > 2**bits:
            raise ValueError(
                f"cannot be exact in {dtype} computed in {compute_precision} (its inputs keep {bits} significand "
                f"bits: integers up to 2^{bits} = {2**bits}): {o.name} holds a value of magnitude {o.max_abs:g}; "
                "pin fp32_precision: ieee, or keep the written values within the bound"
            )


def plan_exact(
    op: str,
    args: Mapping[str, Any],
    operands: Sequence[Operand],
    dtype: str,
    compute_precision: str | None = None,
) -> ExactPlan:
    """How to fill op's operands with exact integers in dtype; ValueError naming the bound if impossible.

    compute_precision (e.g. tf32 for a float32 convolution on a GPU) also bounds the written operands of a sum.
    """
    _check_compute_precision(op, operands, dtype, compute_precision)
    bits = PRECISION_BITS.get(dtype)
    by_role = {o.role: o for o in operands}
    data = by_role.get("data") or (operands[0] if operands else None)
    k = reduction_length(op, args, [o.shape for o in operands])
    if bits is None:  # integer dtypes: integers are exact, nothing to bound
        return ExactPlan(dtype, op, k, DATA_RANGE, WEIGHT_RANGE, BIAS_RANGE, None, 2**63, 0.0)
    bound = 2**bits
    where = f"in {dtype} (integers are exact only up to 2^{bits} = {bound})"
    if op in SELECT_OPS:
        largest = (
            max((o.max_abs or 0.0) if not o.generated else SELECT_RANGE for o in operands) if operands else 0
        )
        if largest > bound:
            raise ValueError(f"cannot be exact {where}: a value of magnitude {largest:g} is written")
        return ExactPlan(dtype, op, 1, SELECT_RANGE, 0, 0, None, bound, float(largest))
    data_max = float(DATA_RANGE) if data is None or data.generated else float(data.max_abs or 0.0)
    if op in AVERAGE_OPS:
        data_range = DATA_RANGE
        if data is not None and data.generated:
            data_range = min(DATA_RANGE, bound // k)
            data_max = float(data_range)
        if data_range < 1 or k * data_max > bound:
            raise ValueError(
                f"cannot be exact {where}: {op} sums {k} values"
                + (f" of magnitude up to {data_max:g}" if data_max > 1 else "")
                + f", up to {k * max(data_max, 1):g} > {bound}"
            )
        return ExactPlan(dtype, op, k, data_range, 0, 0, None, bound, k * data_max)
    weight, bias = by_role.get("weight"), by_role.get("bias")

    def limits(r: int) -> tuple[float, float, float]:
        """|data|, |weight|, |bias| when generated tensors use magnitudes up to r."""
        a = float(r) if data is None or data.generated else float(data.max_abs or 0.0)
        w = float(r) if weight is None or weight.generated else float(weight.max_abs or 0.0)
        c = 0.0 if bias is None else float(r) if bias.generated else float(bias.max_abs or 0.0)
        return a, w, c

    # Densest first: the widest range whose dense sums stay exact, else +-1 values with a sparse weight.
    for r in _RANGES:
        a, w, c = limits(r)
        if k * a * w + c <= bound:
            return ExactPlan(dtype, op, k, r, r, r, None, bound, k * a * w + c)
    a, w, c = limits(1)
    if weight is None or not weight.generated:
        raise ValueError(
            f"cannot be exact {where}: {op} sums K = {k} products of |input| <= {a:g} and |weight| <= {w:g} "
            f"plus |bias| <= {c:g}, up to {k * a * w + c:g} > {bound}; let the weight be generated "
            "(rand/randn) so that its density of non-zeros can be limited"
        )
    nonzeros = int((bound - c) // (a * w))
    if nonzeros < 1:
        raise ValueError(
            f"cannot be exact {where}: one product of |input| <= {a:g} and |weight| <= {w:g} plus "
            f"|bias| <= {c:g} is already over {bound}"
        )
    return ExactPlan(dtype, op, k, 1, 1, 1, nonzeros, bound, nonzeros * a * w + c)

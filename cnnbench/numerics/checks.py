"""Compare a result with what was expected, elementwise within a tolerance, into a Check with the first mismatches,
the share of the tolerance used (budget) and the error in ulps of the compute precision."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from cnnbench.numerics.tolerance import Tolerance
from cnnbench.ops.precision import PRECISION_BITS

__all__ = [
    "COMPUTE_PRECISION_BITS",
    "MAX_EXAMPLES",
    "ULP_FLOOR_FRACTION",
    "Check",
    "Mismatch",
    "check_close",
    "check_shape",
    "machine_epsilon",
]

#: How many mismatching points a failed check records.
MAX_EXAMPLES = 10
#: Significand bits of the reduced math modes a backend may compute a dtype's op in (the result is still stored
#: in the dtype): TF32 keeps float32's range with 10 explicit mantissa bits. "ieee" (or None: not recorded) is the
#: dtype's own precision.
COMPUTE_PRECISION_BITS: dict[str, int] = {"tf32": 11}
#: Expected values smaller than this fraction of the tensor's largest |expected| are measured in the ulps of that
#: floor: their error comes from cancellation in a sum whose terms are the size of the tensor, not from their own
#: magnitude (an exact zero would otherwise give an infinite number of ulps for the smallest error).
ULP_FLOOR_FRACTION = 2.0**-10
#: The rank of ulps_p99 among the elements: nearest-rank percentile.
_P99 = 0.99


def machine_epsilon(dtype: str, compute_precision: str | None = None) -> float | None:
    """The spacing of the compute precision's numbers in [1, 2): 2^(1-p) (twice the unit roundoff).

    p is the dtype's significand bits (cnnbench.ops.precision), or fewer where compute_precision names a reduced
    math mode (COMPUTE_PRECISION_BITS, e.g. "tf32" for float32); None for a dtype without a precision (integers).
    An unknown compute precision raises ValueError rather than measuring in the wrong unit.
    """
    if dtype not in PRECISION_BITS:
        return None
    bits = PRECISION_BITS[dtype]
    if compute_precision not in (None, "ieee"):
        if compute_precision not in COMPUTE_PRECISION_BITS:
            known = ", ".join(["ieee", *sorted(COMPUTE_PRECISION_BITS)])
            raise ValueError(f"compute precision {compute_precision!r}: expected one of {known}")
        bits = min(bits, COMPUTE_PRECISION_BITS[compute_precision])
    return 2.0 ** (1 - bits)


@dataclass(frozen=True)
class Mismatch:
    """One element outside tolerance."""

    index: tuple[int, ...]
    expected: float
    got: float

    @property
    def abs_err(self) -> float:
        """|got - expected|."""
        return abs(self.got - self.expected)

    def __str__(self) -> str:
        rel = self.abs_err / abs(self.expected) if self.expected else float("inf")
        return (
            f"at {list(self.index)}: expected {_num(self.expected)}, got {_num(self.got)} "
            f"(abs err {self.abs_err:.3g}, rel err {rel:.3g})"
        )


def _num(x: float) -> str:
    if math.isfinite(x) and x == int(x) and abs(x) < 2**53:
        return str(int(x))
    return f"{x:.9g}"


@dataclass(frozen=True)
class Check:
    """The outcome of comparing one tensor (or shape, or string) with its expectation."""

    passed: bool
    message: str = ""
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    mismatches: int = 0
    numel: int = 0
    examples: tuple[Mismatch, ...] = field(default_factory=tuple)
    tolerance: Tolerance | None = None
    mistrust: str = ""
    """Why a passing check cannot discriminate (e.g. most expected values are zero); empty when it can."""
    budget_used: float | None = None
    """max |got - expected| / (atol + rtol * |expected|): the share of the tolerance used (a pass is <= 1)."""
    ulps_max: float | None = None
    """The largest error in ulps of the compute precision at each element's magnitude (None for integers)."""
    ulps_p99: float | None = None
    """The 99th percentile (nearest rank) of the same per-element errors in ulps."""


def check_shape(label: str, got: tuple[int, ...] | list[int], expected: list[int] | tuple[int, ...]) -> Check:
    """Shapes must be equal (no broadcasting)."""
    if list(got) == list(expected):
        return Check(passed=True)
    return Check(passed=False, message=f"{label}: expected shape {list(expected)}, got {list(got)}")


def check_close(
    label: str,
    got: torch.Tensor,
    expected: torch.Tensor,
    tolerance: Tolerance,
    max_examples: int = MAX_EXAMPLES,
    *,
    dtype: str | None = None,
    compute_precision: str | None = None,
) -> Check:
    """Compare elementwise in float64 on the CPU. NaN matches NaN and an infinity matches itself.

    Besides the max abs/rel errors the check records the budget used and the error in ulps: one ulp of an element
    is eps * 2^floor(log2 max(|expected|, floor)) with eps = machine_epsilon(dtype, compute_precision) (dtype:
    got's own unless given) and floor = ULP_FLOOR_FRACTION * max |expected| (at least the dtype's smallest normal).
    """
    shape = check_shape(label, tuple(got.shape), tuple(expected.shape))
    if not shape.passed:
        return shape
    g = got.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    numel = g.numel()
    if numel == 0:
        return Check(passed=True, numel=0, tolerance=tolerance, budget_used=0.0)
    both_nan = torch.isnan(g) & torch.isnan(e)
    same_inf = torch.isinf(g) & torch.isinf(e) & (g == e)
    err = (g - e).abs()
    err = torch.where(both_nan | same_inf, torch.zeros_like(err), err)
    err = torch.where(torch.isnan(err), torch.full_like(err, float("inf")), err)
    # A non-finite expected value must be matched exactly (rtol * inf would allow anything).
    allowed = torch.where(torch.isfinite(e), tolerance.atol + tolerance.rtol * e.abs(), 0.0)
    bad = err > allowed
    mag = e.abs()
    rel = torch.where(mag > 0, err / mag, torch.where(err > 0, float("inf"), 0.0))
    max_abs = float(err.max())
    max_rel = float(rel.max())
    count = int(bad.sum())
    budget = _budget(err, allowed)
    eps = machine_epsilon(dtype or str(got.dtype).removeprefix("torch."), compute_precision)
    ulps = _ulps(err, mag, eps, _smallest_normal(got.dtype)) if eps is not None else None
    ulps_max, ulps_p99 = _max_and_p99(ulps) if ulps is not None else (None, None)
    if count == 0:
        return Check(True, "", max_abs, max_rel, 0, numel, (), tolerance, "", budget, ulps_max, ulps_p99)
    idx = bad.nonzero()[:max_examples]
    examples = tuple(
        Mismatch(tuple(int(i) for i in ix), float(e[tuple(ix)]), float(g[tuple(ix)])) for ix in idx.tolist()
    )
    head = (
        f"{label}: {count} of {numel} elements differ (max abs err {max_abs:.3g}, max rel err {max_rel:.3g}; "
        f"atol {tolerance.atol:g}, rtol {tolerance.rtol:g})"
    )
    lines = [head, *(f"  {m}" for m in examples)]
    if count > len(examples):
        lines.append(f"  ... and {count - len(examples)} more")
    return Check(
        False,
        "\n".join(lines),
        max_abs,
        max_rel,
        count,
        numel,
        examples,
        tolerance,
        "",
        budget,
        ulps_max,
        ulps_p99,
    )


def _budget(err: torch.Tensor, allowed: torch.Tensor) -> float:
    """The largest err / allowed; an element allowed no error uses none when exact (0/0) and an infinite share
    otherwise (x/0)."""
    return float((err / allowed).nan_to_num_(nan=0.0, posinf=math.inf).max())


def _smallest_normal(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype if dtype.is_floating_point else torch.float64).tiny)


#: The exponent field of a float64: keeping only it turns a positive normal x into 2^floor(log2 x).
_FLOAT64_EXPONENT = 0x7FF0000000000000


def _ulps(err: torch.Tensor, mag: torch.Tensor, eps: float, tiny: float) -> torch.Tensor:
    """Each element's error in ulps of eps at max(|expected|, floor); mag is |expected| in float64. A
    non-finite expected value counts 0 ulps when matched and infinitely many otherwise (err is 0 or inf there)."""
    at = mag.nan_to_num(nan=0.0, posinf=0.0)
    floor = max(tiny, ULP_FLOOR_FRACTION * float(at.max()))
    at.clamp_min_(floor)  # a positive normal float64 everywhere, so its exponent field alone is its binade
    binade = (at.view(torch.int64) & _FLOAT64_EXPONENT).view(torch.float64)
    return err / binade.mul_(eps)


def _max_and_p99(ulps: torch.Tensor) -> tuple[float, float]:
    flat = ulps.reshape(-1)
    rank = max(1, math.ceil(_P99 * flat.numel()))
    return float(flat.max()), float(torch.kthvalue(flat, rank).values)

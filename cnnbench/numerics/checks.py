"""Compare a result with what was expected, elementwise within a tolerance, into a Check with the first mismatches."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from cnnbench.numerics.tolerance import Tolerance

__all__ = ["MAX_EXAMPLES", "Check", "Mismatch", "check_close", "check_shape"]

#: How many mismatching points a failed check records.
MAX_EXAMPLES = 10


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
) -> Check:
    """Compare elementwise in float64 on the CPU. NaN matches NaN and an infinity matches itself."""
    shape = check_shape(label, tuple(got.shape), tuple(expected.shape))
    if not shape.passed:
        return shape
    g = got.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    numel = g.numel()
    if numel == 0:
        return Check(passed=True, numel=0, tolerance=tolerance)
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
    if count == 0:
        return Check(True, "", max_abs, max_rel, 0, numel, (), tolerance)
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
    return Check(False, "\n".join(lines), max_abs, max_rel, count, numel, examples, tolerance)

"""Numerics drift between two runs: how far each variant's budget used and ulps moved, per variant and per
target x dtype x device, even when both runs pass; growth of the budget beyond a limit can fail the gate.

A row's budget used is max |got - expected| / (atol + rtol * |expected|) (cnnbench.numerics.checks): 1 is the
tolerance. Rows stored before schema v3 have none ("not recorded"): they are listed as such, never as drift.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cnnbench.errors import UsageError
from cnnbench.report.change import Change
from cnnbench.report.pattern import variant_pattern
from cnnbench.store.result import Result

__all__ = [
    "BUDGET_FLOOR",
    "Drift",
    "DriftLimits",
    "GroupDrift",
    "VariantDrift",
    "budget_factor",
    "drift_regressions",
    "group_line",
    "numerics_drift",
    "parse_group_budget_growth",
    "variant_line",
]

#: Growth is measured from at least this budget: a budget going from 0.0001 to 0.001 is ten times larger but
#: still a thousandth of the tolerance, and from an exact 0 any error would be an infinite factor.
BUDGET_FLOOR = 0.01
#: Statuses whose budget is a passing error: drift of failing rows is a status or tolerance change instead.
_PASSING = frozenset({"passed", "mistrusted", "xpass"})


def budget_factor(base: float, new: float) -> float:
    """new / base: 1 when both are equal (exact zeros included), inf when only base is 0."""
    if new == base:
        return 1.0
    return new / base if base > 0 else math.inf


def _fmt(value: float | None) -> str:
    if value is None:
        return "not recorded"
    return f"{value:.3g}"


def _factor(value: float) -> str:
    return "new error (was exact)" if math.isinf(value) else f"{value:.3g}x"


@dataclass(frozen=True)
class VariantDrift:
    """One variant's budget used and ulps in the base and the new run (both recorded)."""

    variant_id: str
    target: str
    dtype: str
    device: str
    base_budget: float
    new_budget: float
    base_ulps_max: float | None
    new_ulps_max: float | None
    base_ulps_p99: float | None
    new_ulps_p99: float | None
    passing: bool
    """Both rows passed (passed, mistrusted or xpass): only then can drift be a regression."""

    @property
    def factor(self) -> float:
        """How many times the new budget used is the base one."""
        return budget_factor(self.base_budget, self.new_budget)

    @property
    def moved(self) -> bool:
        """Whether the budget or the ulps changed at all (an A/A comparison moves nothing)."""
        return (self.base_budget, self.base_ulps_max, self.base_ulps_p99) != (
            self.new_budget,
            self.new_ulps_max,
            self.new_ulps_p99,
        )


@dataclass(frozen=True)
class GroupDrift:
    """The budgets of one target x dtype x device in both runs: median and max over its variants."""

    target: str
    dtype: str
    device: str
    variants: int
    """Variants passing in both runs with a budget recorded in both."""
    moved: int
    not_recorded: int
    """Variants measured but without a budget in one of the runs (a run stored before schema v3)."""
    base_p50: float | None = None
    new_p50: float | None = None
    base_max: float | None = None
    new_max: float | None = None
    base_ulps_max: float | None = None
    new_ulps_max: float | None = None

    @property
    def factor(self) -> float | None:
        """new / base median budget used; None when not recorded."""
        if self.base_p50 is None or self.new_p50 is None:
            return None
        return budget_factor(self.base_p50, self.new_p50)


@dataclass
class Drift:
    """The numerics drift of a comparison."""

    variants: list[VariantDrift] = field(default_factory=list)
    groups: list[GroupDrift] = field(default_factory=list)
    not_recorded: list[str] = field(default_factory=list)
    """Variant ids measured in both runs whose budget one run did not record."""

    @property
    def moved(self) -> list[VariantDrift]:
        """The variants whose budget or ulps changed, the largest growth first."""
        return sorted((v for v in self.variants if v.moved), key=lambda v: (-v.factor, v.variant_id))


def _measured(row: Result) -> bool:
    """A check row that compared tensors (its max abs error is there even in a v2 row)."""
    return row.kind == "check" and (row.max_abs_err is not None or row.budget_used is not None)


def _largest(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def numerics_drift(pairs: Iterable[tuple[Result, Result]]) -> Drift:
    """The drift of every (base, new) pair of rows of one variant, and per target x dtype x device."""
    drift = Drift()
    by_group: dict[tuple[str, str, str], list[VariantDrift]] = {}
    unrecorded: dict[tuple[str, str, str], int] = {}
    for base, new in pairs:
        if not (_measured(base) and _measured(new)):
            continue
        key = (new.target, new.dtype, new.device)
        if base.budget_used is None or new.budget_used is None:
            drift.not_recorded.append(new.variant_id)
            unrecorded[key] = unrecorded.get(key, 0) + 1
            continue
        if not (math.isfinite(base.budget_used) and math.isfinite(new.budget_used)):
            continue  # an infinite budget is a failure, which the status and tolerance changes report
        one = VariantDrift(
            new.variant_id,
            *key,
            base.budget_used,
            new.budget_used,
            base.ulps_max,
            new.ulps_max,
            base.ulps_p99,
            new.ulps_p99,
            passing=base.status in _PASSING and new.status in _PASSING,
        )
        drift.variants.append(one)
        by_group.setdefault(key, []).append(one)
    for key in sorted(set(by_group) | set(unrecorded)):
        group = _group(key, by_group.get(key, []), unrecorded.get(key, 0))
        if group is not None:
            drift.groups.append(group)
    return drift


def _group(key: tuple[str, str, str], rows: list[VariantDrift], not_recorded: int) -> GroupDrift | None:
    """The group's figures over the variants passing in both runs (a failure's budget is no passing error);
    None for a group with neither such a variant nor one not recorded."""
    passing = [v for v in rows if v.passing]
    if not passing:
        return GroupDrift(*key, variants=0, moved=0, not_recorded=not_recorded) if not_recorded else None
    return GroupDrift(
        *key,
        variants=len(passing),
        moved=sum(v.moved for v in passing),
        not_recorded=not_recorded,
        base_p50=statistics.median(v.base_budget for v in passing),
        new_p50=statistics.median(v.new_budget for v in passing),
        base_max=max(v.base_budget for v in passing),
        new_max=max(v.new_budget for v in passing),
        base_ulps_max=_largest(v.base_ulps_max for v in passing),
        new_ulps_max=_largest(v.new_ulps_max for v in passing),
    )


@dataclass(frozen=True)
class DriftLimits:
    """How much a passing variant's budget used may grow before the comparison fails (None: never)."""

    default: float | None = None
    groups: tuple[tuple[str, float], ...] = ()
    """(pattern, factor) pairs; the first whose pattern matches the row's target, case id, case file stem or
    variant id (shell-style * and ?) wins, as --group-threshold does for timings."""

    def for_result(self, result: Result) -> float | None:
        """The growth factor allowed for this row, or None when growth never fails."""
        names = (result.target, result.case_id, Path(result.file).stem, result.variant_id)
        for pattern, factor in self.groups:
            if any(variant_pattern(pattern).fullmatch(name) for name in names):
                return factor
        return self.default


def parse_group_budget_growth(text: str) -> tuple[str, float]:
    """'GROUP=F' (e.g. 'conv2d=4') as a (pattern, factor) pair; F must be at least 1."""
    group, sep, value = text.rpartition("=")
    try:
        factor = float(value)
    except ValueError:
        factor = math.nan
    if not sep or not group or not math.isfinite(factor) or factor < 1:
        raise UsageError(
            f"--group-budget-growth {text!r}: expected GROUP=FACTOR with FACTOR >= 1, e.g. conv2d=4"
        )
    return group, factor


def variant_line(v: VariantDrift) -> str:
    """ "budget used 0.12 -> 0.48 (4x); ulps max 3 -> 12, p99 1 -> 4"."""
    return (
        f"budget used {_fmt(v.base_budget)} -> {_fmt(v.new_budget)} ({_factor(v.factor)}); "
        f"ulps max {_fmt(v.base_ulps_max)} -> {_fmt(v.new_ulps_max)}, "
        f"p99 {_fmt(v.base_ulps_p99)} -> {_fmt(v.new_ulps_p99)}"
    )


def group_line(g: GroupDrift) -> str:
    """ "conv2d float16 cpu: budget p50 0.12 -> 0.48, 4x; max 0.2 -> 0.6; ulps max 3 -> 12 (5 of 8 moved)"."""
    name = f"{g.target} {g.dtype} {g.device}"
    if g.factor is None:
        return f"{name}: budget not recorded ({g.not_recorded} variants: a run stored before budgets were)"
    text = (
        f"{name}: budget p50 {_fmt(g.base_p50)} -> {_fmt(g.new_p50)}, {_factor(g.factor)}; "
        f"max {_fmt(g.base_max)} -> {_fmt(g.new_max)}; ulps max {_fmt(g.base_ulps_max)} -> {_fmt(g.new_ulps_max)}"
        f" ({g.moved} of {g.variants} moved)"
    )
    return text + (f"; {g.not_recorded} not recorded" if g.not_recorded else "")


def drift_regressions(
    drift: Drift, limits: DriftLimits, rows: dict[str, tuple[Result, Result]]
) -> list[Change]:
    """A "drift" change per passing variant whose budget grew more than its limit allows.

    Growth is measured from max(base budget, BUDGET_FLOOR); rows maps each variant id to its (base, new) rows.
    """
    changes = []
    for v in drift.variants:
        base, new = rows[v.variant_id]
        limit = limits.for_result(new)
        if limit is None or not v.passing or v.new_budget <= limit * max(v.base_budget, BUDGET_FLOOR):
            continue
        detail = f"{variant_line(v)}: grew more than {limit:g}x"
        changes.append(Change(v.variant_id, "drift", detail, base, new, ratio=v.factor))
    return changes

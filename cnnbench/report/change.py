"""One difference between the base and the new row of a variant, and the kinds a difference can be."""

from __future__ import annotations

from dataclasses import dataclass

from cnnbench.store.result import Result

__all__ = ["CHANGE_KINDS", "Change"]

#: What a change can be about: a status, elements outside tolerance, the output's bits, the speed, or the
#: budget used growing beyond --max-budget-growth (cnnbench.report.drift).
CHANGE_KINDS = ("status", "tolerance", "bitwise", "perf", "drift")


@dataclass(frozen=True)
class Change:
    """One difference between the base and the new row of a variant."""

    variant_id: str
    kind: str
    """One of CHANGE_KINDS, or "environment" for a row that could not be compared."""
    detail: str
    base: Result | None = None
    new: Result | None = None
    ratio: float | None = None
    """new / base median time, for perf changes; new / base budget used, for drift changes."""
    p_value: float | None = None
    allowed: str = ""
    """The reason an accepted-differences entry gives, when the change is an accepted one."""

"""Dispatch a variant to the runner of its kind: numerics checks to cnnbench.numerics.runner, benchmarks to
cnnbench.bench.runner; and the row of a variant that could not finish (its worker crashed or timed out)."""

from __future__ import annotations

import warnings

from cnnbench.bench.runner import run_benchmark
from cnnbench.casefile.variants import AnyVariant, BenchVariant
from cnnbench.numerics.runner import apply_xfail, base_result, run_check
from cnnbench.store.result import Result

__all__ = ["MAX_WARNINGS", "describe_warnings", "error_result", "run_variant"]

#: Distinct warnings a row keeps (a benchmark loop can raise the same one thousands of times; each is kept once).
MAX_WARNINGS = 20


def run_variant(variant: AnyVariant) -> Result:
    """Run one variant and return its row; nothing a variant does escapes as an exception.

    A benchmark variant is timed and gets a ``bench`` row; every other variant is checked. The warnings the
    variant raises (PyTorch's UserWarnings, ...) are captured into the row's ``warnings`` column, each distinct one
    once as "Category: message", instead of being printed as if raised inside cnnbench.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_benchmark(variant) if isinstance(variant, BenchVariant) else run_check(variant)
    result.warnings = describe_warnings(caught)
    return result


def describe_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """Each distinct warning once, in the order raised, as "Category: message" (at most MAX_WARNINGS)."""
    seen: dict[str, None] = {}
    for w in caught:
        seen.setdefault(f"{w.category.__name__}: {str(w.message).strip()}", None)
    return list(seen)[:MAX_WARNINGS]


def error_result(variant: AnyVariant, message: str, duration_s: float = 0.0) -> Result:
    """The row of a variant that could not finish (its worker crashed or timed out): an error, or an xfail
    when the case expects this variant to fail."""
    result = base_result(variant)
    result.message, result.duration_s = message, duration_s
    result.kind = variant.kind
    return apply_xfail(result, variant)

"""Dispatch a variant to the runner of its kind: numerics checks to cnnbench.numerics.runner, benchmarks to
cnnbench.bench.runner; and the row of a variant that could not finish (its worker crashed or timed out)."""

from __future__ import annotations

from cnnbench.bench.runner import run_benchmark
from cnnbench.casefile.variants import AnyVariant, BenchVariant
from cnnbench.numerics.runner import apply_xfail, base_result, run_check
from cnnbench.store.result import Result

__all__ = ["error_result", "run_variant"]


def run_variant(variant: AnyVariant) -> Result:
    """Run one variant and return its row; nothing a variant does escapes as an exception.

    A benchmark variant is timed and gets a ``bench`` row; every other variant is checked.
    """
    if isinstance(variant, BenchVariant):
        return run_benchmark(variant)
    return run_check(variant)


def error_result(variant: AnyVariant, message: str, duration_s: float = 0.0) -> Result:
    """The row of a variant that could not finish (its worker crashed or timed out): an error, or an xfail
    when the case expects this variant to fail."""
    result = base_result(variant)
    result.message, result.duration_s = message, duration_s
    result.kind = variant.kind
    return apply_xfail(result, variant)

"""Dispatch a variant to the runner of its kind: numerics checks to cnnbench.numerics.runner, benchmarks to
cnnbench.bench.runner; and the row of a variant that could not finish (its worker crashed or timed out)."""

from __future__ import annotations

import warnings

from cnnbench import device as device_module
from cnnbench.bench.runner import run_benchmark
from cnnbench.casefile.variants import AnyVariant, BenchVariant
from cnnbench.numerics.runner import apply_xfail, base_result, run_check
from cnnbench.store.result import Result

__all__ = ["MAX_WARNINGS", "POISONED", "describe_warnings", "error_result", "run_variant"]

#: Device type -> the variant whose accelerator error (illegal memory access, device-side assert) left this
#: process's context unusable: later variants on that device type are not run here.
POISONED: dict[str, str] = {}
#: Distinct warnings a row keeps (a benchmark loop can raise the same one thousands of times; each is kept once).
MAX_WARNINGS = 20


def _device_type(variant: AnyVariant) -> str:
    return (device_module.resolve(variant.device) or variant.device).partition(":")[0]


def run_variant(variant: AnyVariant) -> Result:
    """Run one variant and return its row; nothing a variant does escapes as an exception.

    A benchmark variant is timed and gets a ``bench`` row; every other variant is checked. The warnings the
    variant raises (PyTorch's UserWarnings, ...) are captured into the row's ``warnings`` column, each distinct one
    once as "Category: message", instead of being printed as if raised inside cnnbench. Once a variant's
    accelerator error has poisoned the device's context, the variants left on that device type become error
    rows saying so (under --isolate a new worker runs them instead; cnnbench.execution.isolation).
    """
    kind = _device_type(variant)
    if kind in POISONED:
        return error_result(
            variant,
            f"not run: the {kind} context of this process is unusable since {POISONED[kind]} hit a GPU error "
            "(every later call would fail the same way); rows already finished are kept. Run with --isolate "
            "to give each variant after such an error a new worker process",
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_benchmark(variant) if isinstance(variant, BenchVariant) else run_check(variant)
    result.warnings = describe_warnings(caught)
    if result.metrics.get("context_poisoned") and kind != "cpu":
        POISONED[kind] = variant.id
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

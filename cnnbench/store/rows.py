"""The row every runner starts from, and the row of a variant on a device this machine lacks, without torch:
a pool's parent never imports torch, yet writes exactly the skipped rows a worker would (cnnbench.execution.pool).
"""

from __future__ import annotations

from cnnbench.casefile.variants import AnyVariant, BenchVariant
from cnnbench.store.result import Result

__all__ = ["ACCELERATOR", "base_result", "bench_base_result", "unavailable_reason", "unavailable_row"]

#: The device name that means whichever accelerator torch sees (cnnbench.device.ACCELERATOR, which imports torch).
ACCELERATOR = "accelerator"


def base_result(variant: AnyVariant) -> Result:
    """A row for variant with its identity columns filled in and status error until something says otherwise."""
    spec = variant.case.spec
    return Result(
        variant_id=variant.id,
        case_id=spec.id,
        file=variant.case.file,
        line=variant.case.line,
        target=spec.target,
        device=variant.device,
        dtype=variant.dtype,
        status="error",
        source=spec.source or "",
    )


def bench_base_result(variant: BenchVariant) -> Result:
    """A benchmark's row before it is timed: kind bench, and the point of its axes under metrics."""
    result = base_result(variant)
    result.kind = "bench"
    result.metrics = {
        "batch": variant.batch,
        "mode": variant.mode,
        "memory_format": variant.memory_format,
        "compile": variant.compile,
        "autocast": variant.autocast,
    }
    return result


def unavailable_reason(variant: AnyVariant) -> str:
    """Why a variant on a device this machine lacks is skipped."""
    if isinstance(variant, BenchVariant):
        return f"device {variant.device} is not available"
    if variant.device.partition(":")[0] == ACCELERATOR:
        return "no accelerator on this machine (torch.accelerator sees none)"
    return f"device {variant.device} is not available"


def unavailable_row(variant: AnyVariant) -> Result:
    """The row run_variant gives a variant whose device this machine lacks: skipped, by its skip rule if one
    applies (checked first, as the runners do), else because the device is missing."""
    result = bench_base_result(variant) if isinstance(variant, BenchVariant) else base_result(variant)
    rule = variant.skip_rule
    result.status, result.reason = "skipped", rule.reason if rule is not None else unavailable_reason(variant)
    return result

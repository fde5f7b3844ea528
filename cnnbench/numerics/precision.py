"""The compute precision of a variant: which of torch's precision flags governs its op, what they say on its
device (cnnbench.device), and the case's or the run's pin around the call."""

from __future__ import annotations

import os

from cnnbench import device as device_module
from cnnbench.casefile.format import CaseSpec
from cnnbench.casefile.variants import Variant
from cnnbench.environment import FP32_PRECISION_ENV
from cnnbench.ops.catalog import module_op
from cnnbench.ops.lowering import lower_module
from cnnbench.ops.precision import MathKind, math_kind, math_kind_of

__all__ = ["FP32_PRECISION_ENV", "case_math_kind", "pin_for", "run_pin", "variant_compute_precision"]


def case_math_kind(spec: CaseSpec) -> MathKind:
    """The precision flag that governs a case's call: its op's, its module's lowering's, or its layers'."""
    if spec.op is not None:
        return math_kind(spec.op)
    if spec.layers is not None:
        return math_kind_of(_lowered(layer.module, layer.args, spec.mode) for layer in spec.layers)
    return math_kind(_lowered(spec.module or "", spec.args, spec.mode))


def _lowered(module: str, args: dict[str, object], mode: str) -> str | None:
    try:
        return lower_module(module, args, mode).op
    except (ValueError, TypeError, KeyError):
        return module_op(module)


def run_pin() -> str | None:
    """The run's --fp32-precision pin (ieee, tf32), or None for torch's flags as they are."""
    value = os.environ.get(FP32_PRECISION_ENV) or None
    return None if value == "default" else value


def pin_for(spec: CaseSpec) -> str | None:
    """The pin in force for a case: its own fp32_precision, else the run's."""
    if spec.fp32_precision not in (None, "default"):
        return spec.fp32_precision
    return run_pin()


def variant_compute_precision(variant: Variant) -> str | None:
    """What the variant computes in under the flags in force now: "ieee"/"tf32"/"bf16" for float32, the
    dtype itself for other floating dtypes, None for integer dtypes."""
    if variant.dtype.startswith(("int", "uint", "bool", "complex")):
        return None
    concrete = device_module.resolve(variant.device) or variant.device
    return device_module.compute_precision(variant.dtype, case_math_kind(variant.case.spec), concrete)

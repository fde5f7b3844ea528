"""The convolution arithmetic applied to a validated case: the output shape its call must have (no torch)."""

from __future__ import annotations

from collections.abc import Sequence

from cnnbench.casefile.format import CaseSpec
from cnnbench.casefile.tensors import tensor_shape
from cnnbench.ops.geometry import SHAPE_MODULES, SHAPE_OPS, GeometryError, call_output_shape

__all__ = ["case_output_shape", "judge_output_shape"]


def case_output_shape(spec: CaseSpec) -> tuple[int, ...] | None:
    """call_output_shape for a validated case (its inputs' shapes, in the order written); None for layers and
    chains."""
    if spec.layers is not None or spec.chain is not None:
        return None
    if spec.op not in SHAPE_OPS and spec.module not in SHAPE_MODULES:
        return None
    shapes = [tensor_shape(t) for t in spec.inputs.values()]
    return call_output_shape(
        op=spec.op, module=spec.module, args=spec.args, input_shapes=shapes, call_args=spec.call_args
    )


def judge_output_shape(spec: CaseSpec, got: Sequence[Sequence[int]]) -> tuple[bool, str] | None:
    """Whether the output shape(s) a call returned agree with the arithmetic: (passed, message), or None when
    the case's call is not modelled. Every tensor of a tuple output (values and indices) has the one shape."""
    label = "output shape vs convolution arithmetic"
    shown = ", ".join(str(list(g)) for g in got) or "no tensor"
    try:
        expected = case_output_shape(spec)
    except GeometryError as exc:
        return False, f"{label}: the arithmetic rejects this geometry ({exc}), but the call returned {shown}"
    if expected is None:
        return None
    passed = bool(got) and all(list(g) == list(expected) for g in got)
    return passed, "" if passed else f"{label}: expected {list(expected)}, got {shown}"

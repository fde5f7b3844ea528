"""``fill: exact`` applied to a case's tensor specs: which tensors are generated, what kept ones bound, and the
load-time refusal of a case that cannot be exact in one of its dtypes (the rule itself: cnnbench.ops.exact).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from cnnbench.casefile.tensors import (
    ArangeSpec,
    DataSpec,
    FileSpec,
    FullSpec,
    OnesSpec,
    RandnSpec,
    RandSpec,
    ZerosSpec,
    tensor_shape,
)
from cnnbench.ops.exact import SUM_OPS, Operand, exact_op, plan_exact
from cnnbench.ops.lowering import parameter_shapes
from cnnbench.ops.precision import planned_precision

__all__ = ["case_operands", "check_exact_fill", "is_generated"]

_ROLES_OF_SUMS = ("data", "weight", "bias")


def is_generated(spec: Any) -> bool:
    """True for the tensors exact fill replaces: seeded random ones (rand, randn)."""
    return isinstance(spec, RandSpec | RandnSpec)


def _flat(value: Any) -> list[float]:
    if isinstance(value, list):
        return [x for item in value for x in _flat(item)]
    return [float(value)]


def _kept_values(spec: Any) -> tuple[float | None, bool]:
    """A kept tensor's largest magnitude and whether all its values are integers (None: unknown)."""
    if isinstance(spec, FileSpec):
        return None, False
    if isinstance(spec, OnesSpec):
        return 1.0, True
    if isinstance(spec, ZerosSpec):
        return 0.0, True
    if isinstance(spec, FullSpec):
        return abs(spec.value), float(spec.value).is_integer()
    if isinstance(spec, ArangeSpec):
        n = math.prod(spec.arange)
        ends = (spec.start, spec.start + spec.step * max(n - 1, 0))
        return max(abs(e) for e in ends), float(spec.start).is_integer() and float(spec.step).is_integer()
    values = _flat(spec.data if isinstance(spec, DataSpec) else spec)
    if not values:
        return 0.0, True
    return max(abs(v) for v in values), all(v.is_integer() for v in values)


def _operand(name: str, role: str, spec: Any) -> Operand:
    shape = tensor_shape(spec)
    if is_generated(spec):
        return Operand(name, role, shape, True)
    max_abs, integral = _kept_values(spec)
    if max_abs is None:
        raise ValueError(
            f"exact fill cannot bound {name}, a tensor read from a file; write it inline or generate it "
            "(rand/randn are replaced by exact integers)"
        )
    if not integral:
        raise ValueError(f"exact fill needs integer values, but {name} holds non-integers")
    return Operand(name, role, shape, False, max_abs)


def case_operands(
    op: str | None,
    module: str | None,
    args: Mapping[str, Any],
    inputs: Mapping[str, Any],
    state: Mapping[str, Any],
    lowered_op: str,
) -> list[Operand]:
    """The tensors of an exact-fill case in call order: an op's inputs, or a module's input then parameters."""
    roles = _ROLES_OF_SUMS if lowered_op in SUM_OPS else ()
    operands: list[Operand] = []
    for i, (name, spec) in enumerate(inputs.items()):
        role = roles[i] if op is not None and i < len(roles) else "data"
        operands.append(_operand(f"inputs.{name}", role, spec))
    if module is not None:
        for name, shape in parameter_shapes(module, args).items():
            if name not in ("weight", "bias"):
                continue
            if name in state:
                operands.append(_operand(f"state.{name}", name, state[name]))
            else:
                operands.append(Operand(name, name, shape, True))
    return operands


def check_exact_fill(
    op: str | None,
    module: str | None,
    args: Mapping[str, Any],
    inputs: Mapping[str, Any],
    state: Mapping[str, Any],
    mode: str,
    dtypes: Sequence[str],
    devices: Sequence[str] = (),
    fp32_precision: str | None = None,
) -> None:
    """Refuse (ValueError) an exact-fill case that cannot be exact in one of its dtypes (computed in the
    narrowest precision its devices may use: cnnbench.ops.precision.planned_precision)."""
    try:
        lowered = exact_op(op, module, args, mode)
        operands = case_operands(op, module, args, inputs, state, lowered)
        for dtype in dtypes:
            plan_exact(
                lowered, args, operands, dtype, planned_precision(lowered, dtype, devices, fp32_precision)
            )
    except (KeyError, TypeError, IndexError) as exc:
        # Arguments or shapes the op itself will refuse at run time; exactness cannot be judged before that.
        raise ValueError(f"exact fill cannot read this call's arguments and shapes ({exc!r})") from None

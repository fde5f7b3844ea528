"""What a variant calls, built for one device, dtype and memory format: the callable, its module and its inputs,
with ``fill: exact`` inputs and parameters drawn as the plan of the variant's dtype says."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnbench.casefile.exact import case_operands, is_generated
from cnnbench.casefile.format import CaseSpec
from cnnbench.numerics.fill import exact_integers, make_tensor, torch_dtype
from cnnbench.ops.exact import ExactPlan, exact_op, plan_exact

__all__ = [
    "Builder",
    "Subject",
    "case_inputs",
    "clear_plans",
    "exact_plan",
    "fill_parameters",
    "first_output",
    "to_memory_format",
]

#: Exact-fill plans kept, by (spec identity, dtype): a variant asks for its plan several times.
_PLAN_CACHE_SIZE = 32
#: Exact-fill tensors kept in memory (a case's inputs and parameters, for the plans of its dtypes).
_EXACT_CACHE_SIZE = 16
_PLANS: dict[tuple[int, str], tuple[CaseSpec, ExactPlan | None]] = {}


@dataclass
class Subject:
    """What a variant calls, built for one device, dtype and memory format: the callable and its inputs."""

    fn: Callable[..., Any]
    module: nn.Module | None
    inputs: list[torch.Tensor]


Builder = Callable[[str, str, str], Subject]
"""(device, dtype, memory_format) -> a freshly built Subject of the same case, with the variant's exact plan."""


def first_output(out: Any) -> torch.Tensor:
    """The first tensor a call returned (its values, for a call returning values and indices)."""
    first = out[0] if isinstance(out, tuple | list) else out
    assert isinstance(first, torch.Tensor), type(first)
    return first


def clear_plans() -> None:
    """Forget every cached exact-fill plan and tensor."""
    _PLANS.clear()
    _exact_values.cache_clear()


def exact_plan(spec: CaseSpec, dtype: str) -> ExactPlan | None:
    """The case's exact-fill plan for values used in dtype, or None without ``fill: exact``."""
    if spec.fill != "exact":
        return None
    key = (id(spec), dtype)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1]
    module = None if spec.layers is not None else spec.module
    op = exact_op(spec.op, module, spec.args, spec.mode)
    operands = case_operands(spec.op, module, spec.args, spec.inputs, spec.state, op)
    plan = plan_exact(op, spec.args, operands, dtype)
    if len(_PLANS) >= _PLAN_CACHE_SIZE:
        _PLANS.clear()
    # The entry holds the spec itself, so its id cannot be reused by another spec while it is cached.
    _PLANS[key] = (spec, plan)
    return plan


def _seed(case_seed: int, name: str) -> int:
    """A seed per tensor: the same tensor gets the same integers in every variant of the case."""
    return (case_seed * 1_000_003 + zlib.crc32(name.encode())) % 2**62


@functools.lru_cache(maxsize=_EXACT_CACHE_SIZE)
def _exact_values(plan: ExactPlan, role: str, shape: tuple[int, ...], seed: int, groups: int) -> torch.Tensor:
    """A tensor's exact integers (float64, CPU); cached, since every variant of a case rebuilds them.

    Callers copy before use: the cached tensor must never be written to."""
    if role == "weight":
        if plan.op.startswith("conv_transpose") and len(shape) > 2:
            # (C_in, C_out/g, *k): one output channel sums over its group's input channels and every tap, so
            # the rows to sparsify are (group, output channel) with (input channel, tap) flattened.
            c_in, c_out_g, *taps = shape
            g = max(groups, 1)
            rows = exact_integers((g * c_out_g, c_in // g, *taps), seed, plan.weight_range, plan.nonzeros)
            grouped = rows.reshape(g, c_out_g, c_in // g, *taps).transpose(1, 2)
            return grouped.reshape(shape)
        return exact_integers(shape, seed, plan.weight_range, plan.nonzeros)
    if role == "bias":
        return exact_integers(shape, seed, plan.bias_range)
    return exact_integers(shape, seed, plan.data_range)


def case_inputs(spec: CaseSpec, dtype: str, device: str, plan_dtype: str | None = None) -> list[torch.Tensor]:
    """The case's inputs in dtype on device; with ``fill: exact``, random ones hold the exact integers of
    plan_dtype's plan (default: dtype), so a float64 copy for the reference has the variant's very values."""
    plan = exact_plan(spec, plan_dtype or dtype)
    if plan is None:
        return [make_tensor(s, dtype, device) for s in spec.inputs.values()]
    module = None if spec.layers is not None else spec.module
    operands = case_operands(spec.op, module, spec.args, spec.inputs, spec.state, plan.op)
    groups = int(spec.args.get("groups", 1) or 1)
    out = []
    for operand, (name, tensor_spec) in zip(operands, spec.inputs.items(), strict=False):
        if is_generated(tensor_spec):
            values = _exact_values(plan, operand.role, operand.shape, _seed(spec.seed, name), groups)
            pinned = getattr(tensor_spec, "dtype", None)
            out.append(values.to(device=device, dtype=torch_dtype(pinned or dtype), copy=True))
        else:
            out.append(make_tensor(tensor_spec, dtype, device))
    return out


def fill_parameters(module: nn.Module | None, spec: CaseSpec, plan_dtype: str, device: str) -> None:
    """With ``fill: exact``, give a module's weight and bias (those not set by state:) exact integers."""
    plan = exact_plan(spec, plan_dtype)
    if plan is None or module is None:
        return
    groups = int(spec.args.get("groups", 1) or 1)
    for name in ("weight", "bias"):
        param = getattr(module, name, None)
        if not isinstance(param, torch.Tensor) or name in spec.state:
            continue
        values = _exact_values(plan, name, tuple(param.shape), _seed(spec.seed, f"param.{name}"), groups)
        with torch.no_grad():
            param.copy_(values)


def to_memory_format(subject: Subject, memory_format: str) -> Subject:
    """The subject with its 4-D (5-D) inputs and module in channels_last (channels_last_3d) memory format."""
    if memory_format == "contiguous":
        return subject

    def convert(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 4:
            return t.contiguous(memory_format=torch.channels_last)
        if t.dim() == 5:
            return t.contiguous(memory_format=torch.channels_last_3d)
        return t

    if subject.module is not None:
        subject.module.to(memory_format=torch.channels_last)
    return Subject(subject.fn, subject.module, [convert(t) for t in subject.inputs])

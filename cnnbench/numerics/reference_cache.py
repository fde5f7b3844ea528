"""The float64 NumPy reference of a case, computed once per case and input values and cached: the call a case
lowers to (op, keyword args, tensors), the scales its tolerances derive from, and the statistics it updates."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cnnbench.casefile.format import CaseSpec
from cnnbench.casefile.tensors import tensor_args
from cnnbench.numerics.fill import make_tensor
from cnnbench.numerics.subject import Builder, Subject, clear_plans
from cnnbench.ops.lowering import lower_module, reduction_length
from cnnbench.ops.modelled import NOT_PASSED

__all__ = ["Reference", "clear_cache", "finite_scale", "reference_call", "reference_for", "to_numpy"]

#: References kept in memory: a case's variants run one after the other, so a few entries get every hit.
_CACHE_SIZE = 32
#: Case args that change how torch returns a result but not what the reference computes.
_NOT_REFERENCE_ARGS = NOT_PASSED


@dataclass(frozen=True)
class Reference:
    """The reference's result for one case and one set of input values."""

    op: str
    args: dict[str, Any]
    positional: tuple[np.ndarray | None, ...]
    """float64 tensors in call order (input, then weight/bias/statistics), as they were before the call."""
    outputs: tuple[np.ndarray, ...]
    state: dict[str, np.ndarray] = field(default_factory=dict)
    """Statistics the call updates (batch norm in training): name -> value after the call."""
    k: int = 1
    input_scale: float = 0.0


_CACHE: OrderedDict[tuple[str, str], Reference] = OrderedDict()


def clear_cache() -> None:
    """Forget every cached reference, plan and exact tensor (tests patching the reference use this)."""
    _CACHE.clear()
    clear_plans()


def reference_call(
    spec: CaseSpec, subject: Subject
) -> tuple[str, dict[str, Any], list[torch.Tensor | None], tuple[str, ...]]:
    """The op, its keyword args, its tensors for a float64 subject, and the keyword names of the last tensors
    (module parameters the op takes by keyword, e.g. layer_norm's weight and bias)."""
    if spec.op is not None:
        args = {k: v for k, v in spec.args.items() if k not in _NOT_REFERENCE_ARGS}
        # Tensors passed by keyword (weight=, bias=, running_mean=): float64 arrays, as the positional ones.
        args |= {k: make_tensor(v, "float64").numpy() for k, v in tensor_args(args).items()}
        return spec.op, args, list(subject.inputs), ()
    assert spec.module is not None and subject.module is not None
    lowered = lower_module(spec.module, spec.args, spec.mode)
    args = dict(lowered.args)
    if lowered.notes.get("cumulative_momentum"):
        seen = int(getattr(subject.module, "num_batches_tracked", torch.tensor(0)))
        args["momentum"] = 1.0 / (seen + 1)
    tensors: list[torch.Tensor | None] = list(subject.inputs)  # forward's inputs (Bilinear, MaxUnpool: two)
    for name in (*lowered.tensors, *lowered.keyword_tensors):
        value = getattr(subject.module, name, None) if name else None
        tensors.append(value if isinstance(value, torch.Tensor) else None)
    return lowered.op, args, tensors, lowered.keyword_tensors


def finite_scale(values: np.ndarray) -> float:
    """The largest finite magnitude of values (0 when there is none). Infinities and NaN are compared exactly by
    the checks; letting them into the scale would make every tolerance derived from it infinite."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    finite = a[np.isfinite(a)]
    return float(finite.max()) if finite.size else 0.0


def to_numpy(t: torch.Tensor | None) -> np.ndarray | None:
    """A float64 copy; integer tensors (class targets, unpooling indices) stay int64."""
    if t is None:
        return None
    dtype = torch.float64 if t.is_floating_point() or t.is_complex() else torch.int64
    return t.detach().to("cpu", dtype).numpy().copy()


def _digest(op: str, args: dict[str, Any], arrays: Sequence[np.ndarray | None]) -> str:
    """A key for one call's values: the op, its args and every tensor's shape and bytes."""
    plain = {k: v for k, v in args.items() if not isinstance(v, np.ndarray)}
    h = hashlib.sha256(f"{op}{sorted(plain.items())!r}".encode())
    for name, value in sorted(
        ((k, v) for k, v in args.items() if isinstance(v, np.ndarray)), key=lambda kv: kv[0]
    ):
        h.update(name.encode() + f"{value.shape}".encode() + np.ascontiguousarray(value).tobytes())
    for a in arrays:
        h.update(b"none" if a is None else f"{a.shape}".encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def reference_for(spec: CaseSpec, build: Builder) -> Reference:
    """The case's reference for the variant's input values: from the cache, or computed in float64 now."""
    from cnnbench.numerics.reference import REFERENCES

    subject = build("cpu", "float64", "contiguous")
    op, args, tensors, keywords = reference_call(spec, subject)
    arrays = tuple(to_numpy(t) for t in tensors)
    key = (spec.id, _digest(op, args, arrays))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    work = [None if a is None else a.copy() for a in arrays]
    positional = work[: len(work) - len(keywords)]
    result = REFERENCES[op](*positional, **args, **dict(zip(keywords, work[len(positional) :], strict=True)))
    outputs = tuple(np.asarray(r) for r in result) if isinstance(result, tuple) else (np.asarray(result),)
    state: dict[str, np.ndarray] = {}
    if op == "batch_norm" and args.get("training"):
        for i, name in ((1, "running_mean"), (2, "running_var")):
            if len(work) > i and work[i] is not None:
                state[name] = np.asarray(work[i])
    shapes = [None if a is None else tuple(a.shape) for a in arrays]
    k = reduction_length(op, args, shapes)
    first = arrays[0]
    input_scale = finite_scale(first) if first is not None else 0.0
    ref = Reference(op, args, arrays, outputs, state, k, input_scale)
    _CACHE[key] = ref
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return ref

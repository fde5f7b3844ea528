"""Deterministic tensors from tensor specs: literals and seeded generators, identical on every device."""

from __future__ import annotations

import math
from typing import Any

import torch

from cnnbench.spec import (
    ArangeSpec,
    DataSpec,
    FullSpec,
    OnesSpec,
    RandnSpec,
    RandSpec,
    ZerosSpec,
)

__all__ = ["make_tensor", "torch_dtype"]


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype for an allowlisted dtype name."""
    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype), name
    return dtype


def _values(spec: Any) -> tuple[torch.Tensor, str | None]:
    """The spec's values in float64 (or int64 for integer literals) on the CPU, and its pinned dtype."""
    if isinstance(spec, DataSpec):
        return _literal(spec.data), spec.dtype
    if isinstance(spec, ArangeSpec):
        n = math.prod(spec.arange)
        values = spec.start + spec.step * torch.arange(n, dtype=torch.float64)
        return values.reshape(spec.arange), spec.dtype
    if isinstance(spec, OnesSpec):
        return torch.ones(spec.ones, dtype=torch.float64), spec.dtype
    if isinstance(spec, ZerosSpec):
        return torch.zeros(spec.zeros, dtype=torch.float64), spec.dtype
    if isinstance(spec, FullSpec):
        return torch.full(spec.full, spec.value, dtype=torch.float64), spec.dtype
    if isinstance(spec, RandSpec | RandnSpec):
        gen = torch.Generator().manual_seed(spec.seed)
        if isinstance(spec, RandSpec):
            return torch.rand(spec.rand, generator=gen, dtype=torch.float64), spec.dtype
        return torch.randn(spec.randn, generator=gen, dtype=torch.float64), spec.dtype
    return _literal(spec), None


def _literal(data: Any) -> torch.Tensor:
    tensor = torch.tensor(data)
    if tensor.dtype.is_floating_point:
        # Python floats are float64: build them exactly, never through float32.
        return torch.tensor(data, dtype=torch.float64)
    return tensor


def make_tensor(spec: Any, dtype: str, device: str = "cpu") -> torch.Tensor:
    """Build the tensor a spec describes, cast to dtype (unless the spec pins one) on device.

    Values are generated on the CPU in float64 and cast once, so a seeded random input has the same values
    (up to the dtype's rounding) on every device and in every dtype.
    """
    values, pinned = _values(spec)
    return values.to(dtype=torch_dtype(pinned or dtype)).to(device)

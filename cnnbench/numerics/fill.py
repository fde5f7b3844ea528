"""Deterministic tensors from tensor specs: literals and seeded generators, identical on every device."""

from __future__ import annotations

import math
from typing import Any

import torch

from cnnbench.casefile.tensors import (
    ArangeSpec,
    DataSpec,
    FileSpec,
    FullSpec,
    OnesSpec,
    RandnSpec,
    RandSpec,
    ZerosSpec,
)

__all__ = ["exact_integers", "make_tensor", "torch_dtype"]


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype for an allowlisted dtype name."""
    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype), name
    return dtype


def _values(spec: Any) -> tuple[torch.Tensor, str | None]:
    """The spec's values in float64 (or int64 for integer literals) on the CPU, and its pinned dtype."""
    if isinstance(spec, DataSpec):
        return _literal(spec.data), spec.dtype
    if isinstance(spec, FileSpec):
        return _from_file(spec), spec.dtype
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


def _from_file(spec: FileSpec) -> torch.Tensor:
    """A tensor file's values, widened like a literal's: float64, int64 or bool (the checks run again first)."""
    from cnnbench.casefile.tensorfile import read_tensor_file

    values = read_tensor_file(spec.source)
    tensor = values if isinstance(values, torch.Tensor) else torch.from_numpy(_native(values))
    if tensor.dtype.is_floating_point:
        return tensor.to(torch.float64)
    if tensor.dtype == torch.bool:
        return tensor
    return tensor.to(torch.int64)


def _native(array: Any) -> Any:
    """A copy torch.from_numpy accepts: native byte order, and a dtype torch has (no uint32/uint64 or float128)."""
    import numpy as np

    kind = array.dtype.kind
    target = np.float64 if kind == "f" else np.bool_ if kind == "b" else np.int64
    return np.ascontiguousarray(array.astype(target))


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


def exact_integers(
    shape: tuple[int, ...] | list[int], seed: int, high: int, nonzeros: int | None = None
) -> torch.Tensor:
    """Seeded non-zero integers in [-high, -1] and [1, high] as float64 on the CPU (``fill: exact`` values).

    With nonzeros, each row (the first dim; the rest flattened) keeps exactly that many of them at seeded
    positions and is zero elsewhere: a sparse weight bounds how many terms each output sums
    (cnnbench.casefile.exact.plan_exact decides how many).
    """
    gen = torch.Generator().manual_seed(seed)
    shape = tuple(shape)
    if high < 1 or math.prod(shape) == 0:
        return torch.zeros(shape, dtype=torch.float64)
    rows = shape[0] if shape else 1
    length = math.prod(shape[1:]) if shape else 1
    magnitude = torch.randint(1, high + 1, (rows, length), generator=gen)
    sign = torch.randint(0, 2, (rows, length), generator=gen) * 2 - 1
    values = magnitude * sign
    if nonzeros is not None and nonzeros < length:
        # A random permutation per row; its first `nonzeros` positions keep their values.
        order = torch.rand(rows, length, generator=gen).argsort(dim=1)
        keep = torch.zeros(rows, length, dtype=torch.bool)
        keep.scatter_(1, order[:, :nonzeros], True)
        values = torch.where(keep, values, 0)
    return values.reshape(shape).to(torch.float64)

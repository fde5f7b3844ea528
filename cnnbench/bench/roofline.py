"""The roofline of a benchmark row: bytes moved (a stated lower bound), arithmetic intensity, the bound
``min(compute ceiling, intensity x bandwidth)``, which one applies and the % of it; and the GEMM shapes a run's
workloads lower to (the compute probe measures some of them).

Bytes moved count every input, weight (parameters and buffers) and output tensor once, in the variant's dtype;
a train step adds the gradients: of the output (read), of every weight and of every input it differentiates
(written). Real kernels move at least this much (intermediates of a network, re-reads and the optimizer are left
out), so the achieved GB/s is a lower bound too, and intensity an upper bound.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from cnnbench.bench.workload import meta_workload
from cnnbench.casefile.variants import BenchVariant
from cnnbench.numerics.fill import torch_dtype

__all__ = [
    "BYTES_NOTE",
    "Roofline",
    "Traffic",
    "gemm_shapes",
    "roofline",
    "traffic",
    "variant_traffic",
]

#: What a row's bytes_moved counts (stored with the row, shown in the docs).
BYTES_NOTE = "lower bound: inputs, weights and outputs once (train: + output, weight and input gradients)"
#: GEMMs with a side below this (a depthwise convolution's per-group GEMM) say nothing about the GEMM ceiling.
_MIN_GEMM_SIDE = 16

GemmShape = tuple[int, int, int]
"""(m, n, k) of an (m, k) x (k, n) matrix product."""


@dataclass(frozen=True)
class Traffic:
    """Bytes a call moves at least, by kind."""

    inputs: int
    weights: int
    outputs: int
    gradients: int = 0

    @property
    def total(self) -> int:
        return self.inputs + self.weights + self.outputs + self.gradients


def _nbytes(tensors: Iterable[torch.Tensor], dtype: torch.dtype) -> int:
    """Bytes of tensors, floating ones counted in dtype (the variant's), others in their own."""
    total = 0
    for t in tensors:
        itemsize = torch.empty((), dtype=dtype).element_size() if t.is_floating_point() else t.element_size()
        total += t.numel() * itemsize
    return total


def traffic(
    inputs: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    outputs: Sequence[torch.Tensor],
    dtype: torch.dtype,
    *,
    train: bool,
) -> Traffic:
    """The lower bound on bytes moved by one call (see the module docstring); ``train`` adds the gradients.

    In training the differentiated tensors are the inputs and weights that require grad.
    """
    grads = 0
    if train:
        floating_out = [t for t in outputs if t.is_floating_point()]
        grads = _nbytes(floating_out, dtype)
        grads += _nbytes([t for t in (*weights, *inputs) if t.requires_grad], dtype)
    return Traffic(_nbytes(inputs, dtype), _nbytes(weights, dtype), _nbytes(outputs, dtype), grads)


def _tensors(value: Any) -> list[torch.Tensor]:
    return [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]


def variant_traffic(variant: BenchVariant) -> Traffic:
    """The traffic of one call of the variant (in its mode), from its shapes on the meta device."""
    fn, module, inputs = meta_workload(variant)
    weights: list[torch.Tensor] = []
    if module is not None:
        weights = [*module.parameters(), *module.buffers()]
        module.train(variant.mode == "train")
    with torch.no_grad():
        outputs = _tensors(fn(*inputs))
    if variant.case.spec.model is not None:
        for t in inputs:
            t.requires_grad_(False)  # a model's train step does not differentiate its input
    return traffic(inputs, weights, outputs, torch_dtype(variant.dtype), train=variant.mode == "train")


class _GemmRecorder(TorchDispatchMode):
    """Records the (m, n, k) of every matrix product and convolution (as its im2col GEMM) dispatched."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: Counter[GemmShape] = Counter()

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        packet = getattr(func, "overloadpacket", None)
        aten = torch.ops.aten
        if packet in (aten.mm, aten.addmm):
            a, b = (args[0], args[1]) if packet is aten.mm else (args[1], args[2])
            self.shapes[(int(a.shape[0]), int(b.shape[1]), int(a.shape[1]))] += 1
        elif packet is aten.convolution:
            x, w = args[0], args[1]
            groups = int(args[8]) if len(args) > 8 else 1
            transposed = bool(args[6]) if len(args) > 6 else False
            if not transposed and isinstance(out, torch.Tensor):
                m = int(out.shape[0]) * math.prod(int(s) for s in out.shape[2:])
                k = int(x.shape[1]) // groups * math.prod(int(s) for s in w.shape[2:])
                self.shapes[(m, int(w.shape[0]) // groups, k)] += groups
        return out


def gemm_shapes(variant: BenchVariant) -> Counter[GemmShape]:
    """The GEMMs the variant's forward lowers to ((m, n, k) -> how many), small-sided ones left out."""
    fn, _module, inputs = meta_workload(variant)
    recorder = _GemmRecorder()
    with torch.no_grad(), recorder:
        fn(*inputs)
    return Counter({s: c for s, c in recorder.shapes.items() if min(s) >= _MIN_GEMM_SIDE})


@dataclass(frozen=True)
class Roofline:
    """One row against its ceilings. Rates in GFLOP/s and GB/s; pct None when a ceiling it needs is missing."""

    flops: float
    bytes: float
    seconds: float
    compute_gflops: float | None
    bandwidth_gbs: float | None
    raised: tuple[str, ...] = ()
    """The ceilings ("compute", "memory") this row's own rate raised, so that it stays within its bound."""

    @property
    def intensity(self) -> float | None:
        """FLOP per byte (an upper bound, bytes being a lower bound); None without bytes."""
        return self.flops / self.bytes if self.bytes > 0 else None

    @property
    def gflops(self) -> float | None:
        return self.flops / self.seconds / 1e9 if self.flops > 0 and self.seconds > 0 else None

    @property
    def gbs(self) -> float | None:
        return self.bytes / self.seconds / 1e9 if self.bytes > 0 and self.seconds > 0 else None

    @property
    def bound(self) -> str | None:
        """ "compute" or "memory": the lower of the two roofs at this intensity; None when unknowable."""
        intensity = self.intensity
        if self.flops <= 0:
            return "memory" if self.bytes > 0 else None
        if intensity is None or self.compute_gflops is None or self.bandwidth_gbs is None:
            return None
        return "memory" if intensity * self.bandwidth_gbs < self.compute_gflops else "compute"

    @property
    def bound_gflops(self) -> float | None:
        """``min(compute, intensity x bandwidth)`` in GFLOP/s (None for a row without FLOPs)."""
        intensity = self.intensity
        if self.bound is None or self.flops <= 0 or intensity is None:
            return None
        assert self.compute_gflops is not None and self.bandwidth_gbs is not None
        return min(self.compute_gflops, intensity * self.bandwidth_gbs)

    @property
    def pct_of_bound(self) -> float | None:
        """Achieved rate as a % of the bound that applies (GB/s against bandwidth for a row without FLOPs)."""
        if self.bound == "memory" and self.flops <= 0:
            if self.gbs is None or not self.bandwidth_gbs:
                return None
            return 100 * self.gbs / self.bandwidth_gbs
        bound = self.bound_gflops
        if bound is None or self.gflops is None or bound <= 0:
            return None
        return 100 * self.gflops / bound


def roofline(
    flops: float,
    nbytes: float,
    seconds: float,
    compute_gflops: float | None,
    bandwidth_gbs: float | None,
    *,
    on_raise: Callable[[str, float], None] | None = None,
) -> Roofline:
    """The row's roofline; a row faster than a ceiling raises that ceiling to its own rate (on_raise(kind, rate)
    is told, "compute" in GFLOP/s or "memory" in GB/s), so that its % of bound never exceeds 100."""
    raw = Roofline(flops, nbytes, seconds, compute_gflops, bandwidth_gbs)
    raised: list[str] = []
    compute, bandwidth = compute_gflops, bandwidth_gbs
    if raw.gflops is not None and compute is not None and raw.gflops > compute:
        compute = raw.gflops
        raised.append("compute")
    if raw.gbs is not None and bandwidth is not None and raw.gbs > bandwidth:
        bandwidth = raw.gbs
        raised.append("memory")
    if on_raise is not None:
        for kind in raised:
            on_raise(kind, compute if kind == "compute" else bandwidth)  # type: ignore[arg-type]
    return Roofline(flops, nbytes, seconds, compute, bandwidth, tuple(raised))

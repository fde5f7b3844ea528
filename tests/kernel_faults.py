"""Faults injected below the Python API: each replaces one ATen CPU kernel, as the dispatcher sees it, with a
subtly wrong one modelled on a real class of bug, so every path to it (torch.nn.functional, torch.nn modules,
torch.*, autograd's backward) is wrong at once.

A fault is a TorchDispatchMode: ``__torch_dispatch__`` receives the ATen op after autograd and before the kernel,
and calls inside it reach the real kernels. tests/suite/test_kernel_mutations.py runs this file as a script in a
subprocess (``python tests/kernel_faults.py SPEC.json``) so that no fault can leak into other tests: for each fault
it runs the named bundled cases' CPU variants unpatched and then under the fault, and prints which cases failed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
LOW = (torch.float16, torch.bfloat16)
Kernel = Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]


def _conv_accumulates_in_dtype(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A half-precision convolution whose running sum over input channels is kept in the dtype (each channel's
    kernel taps summed in float32, as a blocked kernel would), instead of in float32 (oneDNN#5041-like)."""
    x, w, bias, stride, padding, dilation, transposed, output_padding, groups = args
    if x.dtype not in LOW or transposed or groups != 1:
        return func(*args, **kwargs)
    acc = None
    for c in range(x.shape[1]):
        part = func(x[:, c : c + 1].float(), w[:, c : c + 1].float(), None, stride, padding, dilation, False,
                    output_padding, 1)  # fmt: skip
        acc = part.to(x.dtype) if acc is None else (acc.float() + part).to(x.dtype)
    assert acc is not None
    return (
        acc
        if bias is None
        else (acc.float() + bias.float().reshape(1, -1, *([1] * (x.dim() - 2)))).to(x.dtype)
    )


def _gemm_accumulates_in_dtype(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A half-precision GEMM (mm/addmm: F.linear) summing K in blocks of 8 in float32 but keeping the running
    sum in the dtype (with ones, bfloat16 then stalls at 2048)."""
    if func is aten.addmm.default:
        bias, a, b = args[:3]
    else:
        bias, (a, b) = None, args[:2]
    if a.dtype not in LOW:
        return func(*args, **kwargs)
    acc = torch.zeros(a.shape[0], b.shape[1], dtype=a.dtype)
    for k in range(0, a.shape[1], 8):
        acc = (acc.float() + a[:, k : k + 8].float() @ b[k : k + 8].float()).to(a.dtype)
    return acc if bias is None else (acc.float() + bias.float()).to(a.dtype)


def _softmax_without_max(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """softmax/log_softmax without subtracting the max first: exp overflows for logits like [1000, 0]."""
    x, dim = args[0], args[1]
    e = torch.exp(x)
    s = e.sum(dim, keepdim=True)
    return e / s if func is aten._softmax.default else x - torch.log(s)


def _layer_norm_eps_outside_sqrt(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """native_layer_norm with rstd = 1 / (sqrt(var) + eps) instead of 1 / sqrt(var + eps)."""
    x, shape, weight, bias, eps = args
    dims = tuple(range(x.dim() - len(shape), x.dim()))
    mean = x.float().mean(dims, keepdim=True)
    var = x.float().var(dims, unbiased=False, keepdim=True)
    rstd = 1.0 / (var.sqrt() + eps)
    out = (x.float() - mean) * rstd
    if weight is not None:
        out = out * weight.float()
    if bias is not None:
        out = out + bias.float()
    return out.to(x.dtype), mean.to(x.dtype), rstd.to(x.dtype)


def _group_norm_per_channel(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """native_group_norm that normalises each channel on its own (instance norm) instead of each group."""
    x, weight, bias, n, c, _, _, eps = args
    mean, rstd = func(*args, **kwargs)[1:]
    flat = x.float().reshape(n, c, -1)
    m = flat.mean(-1, keepdim=True)
    out = (flat - m) / torch.sqrt(flat.var(-1, unbiased=False, keepdim=True) + eps)
    out = out.reshape(x.shape)
    shape = (1, c, *([1] * (x.dim() - 2)))
    if weight is not None:
        out = out * weight.float().reshape(shape)
    if bias is not None:
        out = out + bias.float().reshape(shape)
    return out.to(x.dtype), mean, rstd


def _gelu_ignores_approximate(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """gelu that always uses the tanh approximation, whatever `approximate` says."""
    return func(args[0], approximate="tanh")


def _hardtanh_clamps_below_only(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """hardtanh (and relu6, which lowers to it) clamping at min_val only: inputs above max_val pass through."""
    x = args[0]
    low = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
    return torch.clamp(x, min=low)


def _max_pool_last_tied_max(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """max_pool2d_with_indices choosing the last of tied maxima (PyTorch documents the first in scan order), for
    non-overlapping windows tiling the input; the gradient then reaches the wrong element."""
    x, kernel = args[0], args[1]
    stride = args[2] if len(args) > 2 and args[2] else kernel
    padding = args[3] if len(args) > 3 else 0
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    sh, sw = (stride, stride) if isinstance(stride, int) else tuple(stride)
    h, w = x.shape[-2:]
    if (kh, kw) != (sh, sw) or h % kh or w % kw or any(p != 0 for p in ([padding] if isinstance(padding, int)
                                                                         else padding)):  # fmt: skip
        return func(*args, **kwargs)
    values, flipped = func(x.flip(-1, -2), *args[1:], **kwargs)
    rows, cols = flipped // w, flipped % w
    indices = (h - 1 - rows) * w + (w - 1 - cols)
    return values.flip(-1, -2), indices.flip(-1, -2)


def _conv_weight_grad_first_sample(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """convolution_backward whose weight gradient sums over the first sample of the batch only."""
    grad_input, grad_weight, grad_bias = func(*args, **kwargs)
    grad_output, x = args[0], args[1]
    if grad_weight is None or x.shape[0] < 2:
        return grad_input, grad_weight, grad_bias
    mask = [False, True, False]
    _, first, _ = func(grad_output[:1], x[:1], *args[2:10], mask, **kwargs)
    return grad_input, first, grad_bias


def _upsample_ignores_scale_factor(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """upsample_{nearest,bilinear}2d using in/out sizes instead of the scale factor it was given: wrong exactly when
    floor(n * s) / n != s and recompute_scale_factor is off."""
    if func is aten.upsample_bilinear2d.default:
        return func(args[0], args[1], args[2], None, None)
    return func(args[0], args[1], None, None)


def _flushes_denormals(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Pooling and relu that flush subnormal results to zero (a kernel built with FTZ/DAZ)."""
    out = func(*args, **kwargs)
    values = out[0] if isinstance(out, tuple) else out
    if values.is_floating_point():
        tiny = torch.finfo(values.dtype).tiny
        values = torch.where(values.abs() < tiny, torch.zeros_like(values), values)
    return (values, *out[1:]) if isinstance(out, tuple) else values


_CALLS = [0]


def _conv_nondeterministic(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A convolution whose float32 result moves by one ulp at random elements on each call (an atomics-based
    reduction whose order changes run to run)."""
    out = func(*args, **kwargs)
    if out.dtype != torch.float32:
        return out
    _CALLS[0] += 1  # a new pattern on every call, whatever seed the runner set
    flip = torch.rand(out.shape, generator=torch.Generator().manual_seed(_CALLS[0])) < 0.5
    return torch.where(flip, torch.nextafter(out, torch.full_like(out, math.inf)), out)


def _batch_norm_channels_last_biased(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """native_batch_norm on a channels_last input that ignores eps (a separate NHWC kernel with its own bug)."""
    x = args[0]
    if not (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()):
        return func(*args, **kwargs)
    return func(*args[:7], 0.0, **kwargs)


#: fault name -> (ATen ops it replaces, the wrong kernel)
FAULTS: dict[str, tuple[tuple[Any, ...], Kernel]] = {
    "half conv accumulates in its dtype": ((aten.convolution.default,), _conv_accumulates_in_dtype),
    "half linear accumulates in its dtype": (
        (aten.mm.default, aten.addmm.default),
        _gemm_accumulates_in_dtype,
    ),
    "softmax without max subtraction": (
        (aten._softmax.default, aten._log_softmax.default),
        _softmax_without_max,
    ),
    "layer_norm eps outside the sqrt": ((aten.native_layer_norm.default,), _layer_norm_eps_outside_sqrt),
    "group_norm normalises per channel": ((aten.native_group_norm.default,), _group_norm_per_channel),
    "gelu ignores approximate": ((aten.gelu.default,), _gelu_ignores_approximate),
    "hardtanh/relu6 no upper clamp": ((aten.hardtanh.default,), _hardtanh_clamps_below_only),
    "max_pool2d picks the last tied max": ((aten.max_pool2d_with_indices.default,), _max_pool_last_tied_max),
    "conv weight grad of the first sample": (
        (aten.convolution_backward.default,),
        _conv_weight_grad_first_sample,
    ),
    "upsample ignores a non-integer scale": (
        (aten.upsample_nearest2d.default, aten.upsample_bilinear2d.default),
        _upsample_ignores_scale_factor,
    ),
    "pool/relu flush denormals": (
        (aten.max_pool2d_with_indices.default, aten.relu.default, aten.avg_pool2d.default),
        _flushes_denormals,
    ),
    "conv float32 nondeterministic": ((aten.convolution.default,), _conv_nondeterministic),
    "channels_last batch norm ignores eps": (
        (aten.native_batch_norm.default,),
        _batch_norm_channels_last_biased,
    ),
}


class Fault(TorchDispatchMode):
    """Routes the fault's ATen ops to its wrong kernel; every other op runs as usual."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.ops, self.kernel = FAULTS[name]

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in self.ops:
            return self.kernel(func, args, kwargs)
        return func(*args, **kwargs)


def _failing(variants: list[Any]) -> dict[str, list[str]]:
    from cnnbench.execution.dispatch import run_variant
    from cnnbench.numerics.oracle import clear_cache

    clear_cache()
    caught: dict[str, list[str]] = {}
    for variant in variants:
        result = run_variant(variant)
        if result.status in ("failed", "error"):
            caught.setdefault(variant.case.id, []).append(f"{variant.id}: {result.message[:160]}")
    return caught


def main(spec_path: str) -> int:
    """spec: {"paths": [...], "faults": {name: [case ids]}} -> prints {name: {"clean": ..., "faulty": ...}}."""
    from cnnbench.casefile.load import load_paths
    from cnnbench.casefile.variants import expand

    with open(spec_path) as f:
        spec = json.load(f)
    variants = [v for v in expand(load_paths(spec["paths"])) if v.device == "cpu"]
    report: dict[str, Any] = {}
    for name, case_ids in spec["faults"].items():
        chosen = [v for v in variants if v.case.id in set(case_ids)]
        clean = _failing(chosen)
        with Fault(name):
            faulty = _failing(chosen)
        report[name] = {"found": sorted({v.case.id for v in chosen}), "clean": clean, "faulty": faulty}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    F.relu  # noqa: B018  (torch.nn.functional imported before any fault is entered)
    sys.exit(main(sys.argv[1]))

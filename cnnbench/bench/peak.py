"""The GEMM peak probe (practical FLOP/s per device and dtype, cached) and the slow-path flag it feeds."""

from __future__ import annotations

import torch

from cnnbench import device as device_module
from cnnbench.bench.timing import measure

__all__ = ["GemmPeakKey", "clear_peak_cache", "default_gemm_size", "is_slow_path", "peak_gemm_flops"]

_SLOW_PATH_FACTOR = 4.0  # a dtype > 4x slower than fp32 has no native kernel: conversion alone costs <= ~2x.
_PEAK_MIN_REPLICATES = 3  # the GEMM probe is a short calibration, not a reported benchmark.
_CPU_GEMM_N = 1024  # 2 GFLOP/call: fills the caches and a few cores yet takes ~10 ms at ~150 GFLOP/s.
_CPU_SLOW_DTYPE_GEMM_N = 256  # bf16/fp16 on CPU may be emulated (~100-200x slower): keep the probe < 1 s.
_ACCEL_GEMM_N = 4096  # big enough to saturate an H100-class GPU's tensor cores, still < 1 ms per call.
_CPU_SLOW_DTYPES = frozenset({torch.bfloat16, torch.float16})  # dtypes whose CPU GEMM may be emulated.

GemmPeakKey = tuple[str, torch.dtype, int, int, str]
"""Cache key of :func:`peak_gemm_flops`: (device, dtype, threads, n, fp32 matmul precision)."""

#: Probe results of this process: a probe takes up to a second, and every row of a run asks for its peaks.
_PEAK_CACHE: dict[GemmPeakKey, float] = {}


def default_gemm_size(device: str | torch.device, dtype: torch.dtype) -> int:
    """The square GEMM size ``n`` that :func:`peak_gemm_flops` uses when none is given."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return _CPU_SLOW_DTYPE_GEMM_N if dtype in _CPU_SLOW_DTYPES else _CPU_GEMM_N
    return _ACCEL_GEMM_N


def clear_peak_cache() -> None:
    """Forget every cached :func:`peak_gemm_flops` result."""
    _PEAK_CACHE.clear()


def peak_gemm_flops(
    device: str,
    dtype: torch.dtype,
    *,
    n: int | None = None,
    max_time_s: float = 1.0,
) -> float:
    """Practical peak FLOP/s of ``device`` for ``dtype``: median speed of an n x n x n ``torch.mm`` probe.

    One call is ``2 * n**3`` FLOPs. ``n`` defaults to :func:`default_gemm_size` (1024 for fp32/fp64 on CPU,
    256 for bf16/fp16 on CPU whose kernels may be emulated, 4096 on accelerators). Results are cached per
    (device, dtype, thread count, n, ``torch.get_float32_matmul_precision()``); see :func:`clear_peak_cache`.
    """
    if not dtype.is_floating_point:
        raise ValueError(f"the GEMM probe needs a floating-point dtype, got {dtype}")
    dev = torch.device(device)
    size = default_gemm_size(dev, dtype) if n is None else n
    if size < 1:
        raise ValueError(f"GEMM size must be >= 1, got {size}")
    key: GemmPeakKey = (str(dev), dtype, torch.get_num_threads(), size, torch.get_float32_matmul_precision())
    cached = _PEAK_CACHE.get(key)
    if cached is not None:
        return cached
    if not device_module.is_available(str(dev)):
        raise RuntimeError(f"cannot probe {dev}: {dev.type.upper()} is not available")
    with torch.no_grad():
        a = torch.randn(size, size, device=dev).to(dtype)
        b = torch.randn(size, size, device=dev).to(dtype)
        c = torch.empty(size, size, device=dev, dtype=dtype)

        def _probe() -> None:
            torch.mm(a, b, out=c)

        timing = measure(_probe, device=str(dev), min_replicates=_PEAK_MIN_REPLICATES, max_time_s=max_time_s)
    flops = 2.0 * size**3 / timing.median_s
    _PEAK_CACHE[key] = flops
    return flops


def is_slow_path(dtype_peak: float, fp32_peak: float, factor: float = _SLOW_PATH_FACTOR) -> bool:
    """True when ``dtype_peak`` is more than ``factor`` times below ``fp32_peak`` (no native kernel).

    A native bf16/fp16 GEMM is as fast as fp32 or faster and a convert-then-fp32 path costs at most ~2x, so
    the default factor of 4 only flags emulated/scalar fallbacks (e.g. bf16 on CPUs without AVX512-BF16/AMX,
    measured ~100x slower than fp32 here).
    """
    if dtype_peak <= 0 or fp32_peak <= 0 or factor <= 0:
        raise ValueError("peaks and factor must be > 0")
    return dtype_peak * factor < fp32_peak

"""Compute peaks: the theoretical one where it can be derived (a GPU table by compute capability, a CPU's cores x
SIMD width x FMA units x clock), the GEMM probe that measures a practical one, and the slow-path flag.

The theoretical figures are for reference (a measured ceiling is what a row is compared with); a figure that
cannot be derived is ``None`` with the reason, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from cnnbench import device as device_module
from cnnbench.bench.timing import measure

__all__ = [
    "CPU_FLOP_DTYPES",
    "GPU_FLOP_PER_CLOCK_PER_SM",
    "CpuFacts",
    "Theoretical",
    "cpu_facts",
    "cpu_theoretical",
    "gemm_flops",
    "gpu_theoretical",
    "is_slow_path",
    "theoretical_peak",
]

_SLOW_PATH_FACTOR = 4.0  # a dtype > 4x slower than fp32 has no native kernel: conversion alone costs <= ~2x.
_GEMM_MIN_REPLICATES = 3  # the GEMM probe is a short calibration, not a reported benchmark.

#: Dense FLOP per clock per SM (2 per multiply-add) by CUDA compute capability and dtype, with tensor cores
#: where the architecture has them for that dtype ("tf32" is float32 on tensor cores). Derived from NVIDIA's
#: datasheet peaks divided by SM count and boost clock: V100 (80 SMs, 15.7 fp32 / 125 fp16 TFLOP/s), T4,
#: A100 (108 SMs: 9.7 fp64 vector, 19.5 fp64 tensor, 19.5 fp32, 156 tf32, 312 fp16), A40/A10 (GA10x: 128
#: fp32 lanes per SM), L40S (AD102: 362 fp16, 733 fp8 dense), H100/H200 SXM (132 SMs: 67 fp64 tensor, 67
#: fp32, 495 tf32, 989 fp16, 1979 fp8 dense). A dtype missing from an architecture has no fast path there.
GPU_FLOP_PER_CLOCK_PER_SM: dict[tuple[int, int], dict[str, int]] = {
    (7, 0): {"float64": 64, "float32": 128, "float16": 1024},
    (7, 5): {"float64": 4, "float32": 128, "float16": 1024},
    (8, 0): {"float64": 128, "float32": 128, "tf32": 1024, "float16": 2048, "bfloat16": 2048},
    (8, 6): {"float64": 4, "float32": 256, "tf32": 512, "float16": 1024, "bfloat16": 1024},
    (8, 9): {"float64": 4, "float32": 256, "tf32": 512, "float16": 1024, "bfloat16": 1024, "fp8": 2048},
    (9, 0): {"float64": 256, "float32": 256, "tf32": 2048, "float16": 4096, "bfloat16": 4096, "fp8": 8192},
}
#: The dtypes a CPU's theoretical peak is derived for.
CPU_FLOP_DTYPES = ("float64", "float32", "float16", "bfloat16")
#: Intel's AMX figure: 1024 bf16 (or fp16, with AMX-FP16) FLOP per cycle per core, independent of the FMA units.
_AMX_FLOP_PER_CYCLE = 1024
_GHZ_IN_NAME = re.compile(r"@\s*([0-9.]+)\s*GHz", re.IGNORECASE)


@dataclass(frozen=True)
class Theoretical:
    """A theoretical peak in FLOP/s, or None with the reason it is unknown; how it was derived either way."""

    flops: float | None
    how: str


def _table_key(dtype: str, precision: str) -> str:
    return "tf32" if dtype == "float32" and precision == "tf32" else dtype


def gpu_theoretical(
    capability: tuple[int, int], sm_count: int, clock_khz: int, dtype: str, precision: str = "ieee"
) -> Theoretical:
    """SMs x boost clock x the table's FLOP/clock/SM for (capability, dtype); unknown outside the table."""
    per_sm = GPU_FLOP_PER_CLOCK_PER_SM.get(capability)
    arch = f"sm_{capability[0]}{capability[1]}"
    if per_sm is None:
        return Theoretical(None, f"unknown: architecture {arch} is not in the FLOP/clock/SM table")
    key = _table_key(dtype, precision)
    if key not in per_sm:
        return Theoretical(None, f"unknown: no {key} rate for {arch} in the table")
    if sm_count <= 0 or clock_khz <= 0:
        return Theoretical(None, "unknown: the device reports no SM count or clock")
    flops = float(sm_count) * clock_khz * 1e3 * per_sm[key]
    return Theoretical(
        flops, f"{sm_count} SMs x {clock_khz / 1e6:.3g} GHz x {per_sm[key]} {key} FLOP/clock/SM"
    )


@dataclass(frozen=True)
class CpuFacts:
    """What a CPU's theoretical peak is derived from; None where the machine does not tell."""

    vendor: str
    flags: frozenset[str]
    cores: int
    max_clock_hz: float | None
    clock_source: str


def _cpuinfo() -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() not in found:
                    found[key.strip()] = value.strip()
    except OSError:
        pass
    return found


def cpu_facts(cores: int | None = None) -> CpuFacts:
    """The CPU's vendor, flags and maximum clock (cpufreq, else a "@ 2.60GHz" model name), for ``cores`` cores
    (default: the intra-op threads in force)."""
    info = _cpuinfo()
    clock: float | None = None
    source = "not exposed: no cpufreq maximum and no GHz figure in the model name"
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding="utf-8") as f:
            clock, source = float(f.read().strip()) * 1e3, "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        match = _GHZ_IN_NAME.search(info.get("model name", ""))
        if match:
            clock, source = float(match.group(1)) * 1e9, "the model name's rated (base) clock"
    return CpuFacts(
        vendor=info.get("vendor_id", ""),
        flags=frozenset(info.get("flags", "").split()),
        cores=cores or torch.get_num_threads(),
        max_clock_hz=clock,
        clock_source=source,
    )


def _simd(facts: CpuFacts) -> tuple[int, int | None, str]:
    """SIMD width in bits, FMA units per core (None: not knowable from the flags) and why."""
    flags = facts.flags
    if "avx512f" in flags:
        return 512, None, "AVX-512 CPUs have one or two 512-bit FMA units per core; the CPU flags do not tell"
    if "fma" in flags and "avx2" in flags:
        if facts.vendor == "GenuineIntel":
            return 256, 2, "AVX2 + FMA (Intel since Haswell: two 256-bit FMA units per core)"
        return (
            256,
            None,
            f"AVX2 + FMA on {facts.vendor or 'this vendor'}: FMA units per core not in the table",
        )
    return 0, None, "no AVX2/FMA flags: SIMD FMA throughput unknown"


def cpu_theoretical(facts: CpuFacts, dtype: str) -> Theoretical:
    """cores x SIMD lanes x 2 (FMA) x FMA units x max clock, or AMX's rate for bf16/fp16; unknown otherwise."""
    if dtype not in CPU_FLOP_DTYPES:
        return Theoretical(None, f"unknown: no CPU rule for {dtype}")
    if facts.max_clock_hz is None:
        return Theoretical(None, f"unknown: the maximum clock is {facts.clock_source}")
    clock = f"{facts.cores} cores x {facts.max_clock_hz / 1e9:.3g} GHz ({facts.clock_source})"
    amx = {"bfloat16": "amx_bf16", "float16": "amx_fp16"}.get(dtype)
    if amx is not None and amx in facts.flags:
        per_cycle = _AMX_FLOP_PER_CYCLE
        return Theoretical(
            facts.cores * facts.max_clock_hz * per_cycle, f"{clock} x {per_cycle} AMX FLOP/cycle"
        )
    width, units, why = _simd(facts)
    if units is None:
        return Theoretical(None, f"unknown: {why}")
    bits = {"float64": 64, "float32": 32, "float16": 32, "bfloat16": 32}[dtype]
    if dtype == "float16" and "avx512_fp16" in facts.flags:
        bits = 16
    elif dtype == "bfloat16" and "avx512_bf16" in facts.flags:
        bits = 16  # VDPBF16PS: two bf16 products per fp32 lane
    per_cycle = 2 * (width // bits) * units
    note = "" if bits != 32 or dtype == "float32" else f" ({dtype} converted to float32: no native FMA)"
    return Theoretical(
        facts.cores * facts.max_clock_hz * per_cycle, f"{clock} x {per_cycle} FLOP/cycle; {why}{note}"
    )


def theoretical_peak(device: str, dtype: str, precision: str = "ieee") -> Theoretical:
    """The device's theoretical dense peak for dtype (and compute precision), or None with the reason."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return cpu_theoretical(cpu_facts(), dtype)
    if dev.type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(dev)
        clock = int(getattr(props, "clock_rate", 0) or 0)
        return gpu_theoretical(
            (props.major, props.minor), props.multi_processor_count, clock, dtype, precision
        )
    return Theoretical(None, f"unknown: no theoretical rule for device {dev}")


def gemm_flops(device: str, dtype: torch.dtype, shape: Sequence[int], *, max_time_s: float = 0.3) -> float:
    """Best FLOP/s of ``torch.mm`` on an (m, k) x (k, n) problem: ``2 m n k`` over the fastest block's time.

    The best, not the median: a ceiling is what the device reaches, and noise on a shared machine only slows a
    block down. Raises what torch raises (out of memory, no kernel for the dtype).
    """
    if not dtype.is_floating_point:
        raise ValueError(f"the GEMM probe needs a floating-point dtype, got {dtype}")
    m, n, k = (int(v) for v in shape)
    if min(m, n, k) < 1:
        raise ValueError(f"GEMM sizes must be >= 1, got {shape}")
    dev = torch.device(device)
    if not device_module.is_available(str(dev)):
        raise RuntimeError(f"cannot probe {dev}: {dev.type.upper()} is not available")
    with torch.no_grad():
        a = torch.randn(m, k, device=dev).to(dtype)
        b = torch.randn(k, n, device=dev).to(dtype)
        c = torch.empty(m, n, device=dev, dtype=dtype)

        def _probe() -> None:
            torch.mm(a, b, out=c)

        timing = measure(_probe, device=str(dev), min_replicates=_GEMM_MIN_REPLICATES, max_time_s=max_time_s)
    return 2.0 * m * n * k / timing.min_s


def is_slow_path(dtype_peak: float, fp32_peak: float, factor: float = _SLOW_PATH_FACTOR) -> bool:
    """True when ``dtype_peak`` is more than ``factor`` times below ``fp32_peak`` (no native kernel).

    A native bf16/fp16 GEMM is as fast as fp32 or faster and a convert-then-fp32 path costs at most ~2x, so
    the default factor of 4 only flags emulated/scalar fallbacks (e.g. bf16 on CPUs without AVX512-BF16/AMX,
    measured ~100x slower than fp32 there).
    """
    if dtype_peak <= 0 or fp32_peak <= 0 or factor <= 0:
        raise ValueError("peaks and factor must be > 0")
    return dtype_peak * factor < fp32_peak

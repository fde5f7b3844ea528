"""Tests of cnnbench.bench.peak: the theoretical peaks (GPU table, CPU derivation), the GEMM probe, slow path."""

from __future__ import annotations

import math

import pytest
import torch

from cnnbench.bench import peak
from cnnbench.bench.peak import CpuFacts


def test_h100_class_gpu_peaks_come_from_the_table() -> None:
    # H100 SXM: 132 SMs at a 1.98 GHz boost clock; NVIDIA's datasheet says 67 TFLOP/s fp32 and fp64 (tensor).
    fp32 = peak.gpu_theoretical((9, 0), 132, 1_980_000, "float32")
    assert fp32.flops == pytest.approx(132 * 1.98e9 * 256) and round(fp32.flops / 1e12) == 67
    assert peak.gpu_theoretical((9, 0), 132, 1_980_000, "float64").flops == fp32.flops
    fp16 = peak.gpu_theoretical((9, 0), 132, 1_980_000, "bfloat16")
    assert fp16.flops == pytest.approx(16 * fp32.flops) and "4096 bfloat16 FLOP/clock/SM" in fp16.how
    tf32 = peak.gpu_theoretical((9, 0), 132, 1_980_000, "float32", precision="tf32")
    assert tf32.flops == pytest.approx(8 * fp32.flops)
    # A100: 108 SMs at 1.41 GHz: 19.5 TFLOP/s fp32, 312 fp16 dense.
    assert round(peak.gpu_theoretical((8, 0), 108, 1_410_000, "float16").flops / 1e12) == 312


def test_unknown_gpu_architectures_and_dtypes_say_unknown() -> None:
    unknown = peak.gpu_theoretical((12, 0), 170, 2_500_000, "float32")
    assert unknown.flops is None and "sm_120 is not in the FLOP/clock/SM table" in unknown.how
    no_bf16 = peak.gpu_theoretical((7, 0), 80, 1_530_000, "bfloat16")
    assert no_bf16.flops is None and "no bfloat16 rate for sm_70" in no_bf16.how
    assert peak.gpu_theoretical((9, 0), 0, 0, "float32").flops is None


def _facts(flags: str, clock: float | None = 3e9, vendor: str = "GenuineIntel") -> CpuFacts:
    return CpuFacts(vendor, frozenset(flags.split()), 4, clock, "test")


def test_cpu_peak_is_cores_times_lanes_times_fma_units_times_clock() -> None:
    avx2 = _facts("avx avx2 fma")
    # 4 cores x 3 GHz x (8 fp32 lanes x 2 FLOP per FMA x 2 FMA units) = 384 GFLOP/s.
    assert peak.cpu_theoretical(avx2, "float32").flops == pytest.approx(384e9)
    assert peak.cpu_theoretical(avx2, "float64").flops == pytest.approx(192e9)
    converted = peak.cpu_theoretical(avx2, "bfloat16")
    assert converted.flops == pytest.approx(384e9) and "converted to float32" in converted.how
    amx = peak.cpu_theoretical(_facts("avx2 fma avx512f amx_bf16"), "bfloat16")
    assert amx.flops == pytest.approx(4 * 3e9 * 1024) and "AMX" in amx.how


def test_cpu_peak_unknown_rather_than_guessed() -> None:
    hidden = peak.cpu_theoretical(_facts("avx2 fma", clock=None), "float32")
    assert hidden.flops is None and "maximum clock" in hidden.how
    avx512 = peak.cpu_theoretical(_facts("avx2 fma avx512f"), "float32")
    assert avx512.flops is None and "one or two 512-bit FMA units" in avx512.how
    assert peak.cpu_theoretical(_facts("avx2 fma", vendor="AuthenticAMD"), "float32").flops is None
    assert peak.cpu_theoretical(_facts("sse2"), "float32").flops is None


def test_this_machine_gets_a_figure_or_a_reason() -> None:
    found = peak.theoretical_peak("cpu", "float32")
    assert (found.flops is None) == found.how.startswith("unknown")


def test_gemm_probe_is_positive_and_finite_and_rejects_integers() -> None:
    flops = peak.gemm_flops("cpu", torch.float32, (64, 32, 48), max_time_s=0.05)
    assert flops > 0 and math.isfinite(flops)
    with pytest.raises(ValueError):
        peak.gemm_flops("cpu", torch.int32, (8, 8, 8))
    with pytest.raises(ValueError):
        peak.gemm_flops("cpu", torch.float32, (0, 8, 8))


def test_is_slow_path() -> None:
    assert peak.is_slow_path(1e9, 150e9)
    assert not peak.is_slow_path(100e9, 150e9)
    assert not peak.is_slow_path(300e9, 150e9)
    assert peak.is_slow_path(60e9, 150e9, factor=2.0)
    with pytest.raises(ValueError):
        peak.is_slow_path(0.0, 1.0)

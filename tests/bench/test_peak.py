"""Tests of cnnbench.bench.peak: the GEMM peak probe, its cache and default sizes, and the slow-path flag."""

from __future__ import annotations

import math

import pytest
import torch

from cnnbench.bench import peak
from cnnbench.bench.timing import Measurement

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available")
needs_no_cuda = pytest.mark.skipif(CUDA, reason="checks the error raised when CUDA is missing")


@needs_no_cuda
def test_peak_gemm_fails_cleanly_without_cuda() -> None:
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        peak.peak_gemm_flops("cuda", torch.float32, n=64)


@needs_cuda
def test_peak_gemm_on_cuda() -> None:
    flops = peak.peak_gemm_flops("cuda", torch.float16, n=1024, max_time_s=0.3)
    assert flops > 0
    assert math.isfinite(flops)


def test_peak_gemm_positive_finite_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    peak.clear_peak_cache()
    flops = peak.peak_gemm_flops("cpu", torch.float32, n=128, max_time_s=0.2)
    assert flops > 0
    assert math.isfinite(flops)
    key = ("cpu", torch.float32, torch.get_num_threads(), 128, torch.get_float32_matmul_precision())
    assert peak._PEAK_CACHE[key] == flops

    def no_measuring(*args: object, **kwargs: object) -> Measurement:
        raise AssertionError("a cache hit must not measure again")

    monkeypatch.setattr(peak, "measure", no_measuring)
    assert peak.peak_gemm_flops("cpu", torch.float32, n=128, max_time_s=0.2) == flops
    peak.clear_peak_cache()
    assert not peak._PEAK_CACHE


def test_peak_gemm_low_precision_cpu_probe() -> None:
    flops = peak.peak_gemm_flops("cpu", torch.bfloat16, n=64, max_time_s=0.2)
    assert flops > 0
    assert math.isfinite(flops)


def test_peak_gemm_rejects_integer_dtype() -> None:
    with pytest.raises(ValueError):
        peak.peak_gemm_flops("cpu", torch.int32)


def test_default_gemm_sizes() -> None:
    assert peak.default_gemm_size("cpu", torch.float32) == 1024
    assert peak.default_gemm_size("cpu", torch.bfloat16) == 256
    assert peak.default_gemm_size("cpu", torch.float16) == 256
    assert peak.default_gemm_size("cuda", torch.bfloat16) == 4096


def test_is_slow_path() -> None:
    assert peak.is_slow_path(1e9, 150e9)
    assert not peak.is_slow_path(100e9, 150e9)
    assert not peak.is_slow_path(300e9, 150e9)
    assert peak.is_slow_path(60e9, 150e9, factor=2.0)
    with pytest.raises(ValueError):
        peak.is_slow_path(0.0, 1.0)

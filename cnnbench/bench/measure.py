"""Measurement primitives: robust timing, FLOP and parameter counts, GEMM peak probes and peak memory."""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec

import torch
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "GemmPeakKey",
    "Measurement",
    "RssPeak",
    "clear_peak_cache",
    "count_flops",
    "cpu_peak_rss_bytes",
    "default_gemm_size",
    "is_slow_path",
    "measure",
    "model_flops",
    "param_count",
    "peak_gemm_flops",
    "peak_memory_bytes",
    "set_threads",
    "sync",
]

_P = ParamSpec("_P")

# ---------------------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------------------

_IQR_WARN_THRESHOLD = 0.10  # rel. IQR above 10 % means the median is not trustworthy to compare at ~5 %.
_MIN_REPLICATES_FLOOR = 3  # an IQR needs a few points; fewer than 3 is effectively a single sample.
_MAX_NUMBER_PER_RUN = 2**31 - 1  # timeit's loop count crosses a C int in the C++ timer; keep it in range.
_MAX_BLOCK_GROWTH = 100  # cap per-step growth of the block size so one tiny, noisy block cannot overshoot.
_BLOCK_MARGIN = 1.2  # aim 20 % above min_block_s so jitter does not leave blocks just below it.
_WARMUP_MIN_S = 0.05  # lazy init, allocator caches and oneDNN primitive caches settle within tens of ms.
_WARMUP_MIN_BLOCKS = 2  # "stable" needs two consecutive calibrated blocks to compare.
_WARMUP_MAX_FRACTION = 0.25  # warm-up may use at most a quarter of the time budget; the rest is samples.
_WARMUP_STABLE_TOL = 0.10  # consecutive warm-up blocks within 10 % of each other count as stable.

_SLOW_PATH_FACTOR = 4.0  # a dtype > 4x slower than fp32 has no native kernel: conversion alone costs <= ~2x.
_PEAK_MIN_REPLICATES = 3  # the GEMM probe is a short calibration, not a reported benchmark.
_CPU_GEMM_N = 1024  # 2 GFLOP/call: fills the caches and a few cores yet takes ~10 ms at ~150 GFLOP/s.
_CPU_SLOW_DTYPE_GEMM_N = 256  # bf16/fp16 on CPU may be emulated (~100-200x slower): keep the probe < 1 s.
_ACCEL_GEMM_N = 4096  # big enough to saturate an H100-class GPU's tensor cores, still < 1 ms per call.
_CPU_SLOW_DTYPES = frozenset({torch.bfloat16, torch.float16})  # dtypes whose CPU GEMM may be emulated.

_RSS_TARGET_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
_RSS_TIMEOUT_S = 600.0  # a child that has not finished in 10 minutes is hung, not slow.
_STDERR_TAIL_CHARS = 2000  # enough of a child's traceback to diagnose, not a whole log.

# The child of cpu_peak_rss_bytes: fixed code (never built from user input). It imports the target by
# "module:function", records its RSS before the call, resets the kernel's high-water mark if it can, calls the
# target and writes the high-water mark as JSON. On Linux it reads VmHWM/VmRSS from /proc/self/status rather
# than ru_maxrss: ru_maxrss survives exec, so a child of a big parent (fork/vfork then exec) reports at least
# the parent's RSS. Writing "5" to /proc/self/clear_refs resets VmHWM (Linux >= 4.0) so the peak covers the
# call only. Elsewhere (macOS) it falls back to ru_maxrss (bytes there, KiB on Linux).
_RSS_CHILD_CODE = """\
import gc, importlib, json, resource, sys

def _maxrss():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024

def _status():
    try:
        fields = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    fields[key] = int(value.split()[0]) * 1024
        return fields["VmRSS"], fields["VmHWM"]
    except (OSError, ValueError, IndexError, KeyError):
        return None

def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

target, kwargs_json, out_path = sys.argv[1:4]
module_name, _, func_name = target.partition(":")
func = getattr(importlib.import_module(module_name), func_name)
kwargs = json.loads(kwargs_json)
gc.collect()
before = _status()
if before is None:
    baseline = baseline_peak = _maxrss()
    call_only = False
else:
    baseline, baseline_peak = before
    call_only = _reset_hwm()
func(**kwargs)
after = _status()
peak = _maxrss() if after is None else after[1]
result = {"baseline": baseline, "baseline_peak": baseline_peak, "peak": peak, "call_only": call_only}
with open(out_path, "w") as f:
    json.dump(result, f)
"""


# ---------------------------------------------------------------------------------------------------------
# Devices and threads
# ---------------------------------------------------------------------------------------------------------


def sync(device: str | torch.device) -> None:
    """Wait for all queued work on ``device``: CUDA/accelerator synchronize, no-op on CPU."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"cannot synchronize {dev}: CUDA is not available")
        torch.cuda.synchronize(dev)
        return
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "synchronize"):
        accelerator.synchronize(dev)
        return
    backend = getattr(torch, dev.type, None)
    if backend is not None and hasattr(backend, "synchronize"):
        backend.synchronize()
        return
    raise RuntimeError(f"do not know how to synchronize device type {dev.type!r}")


def set_threads(n: int | None) -> int:
    """Set torch's intra-op thread count to ``n`` (``None`` leaves it) and return the count in force."""
    if n is not None:
        if n < 1:
            raise ValueError(f"thread count must be >= 1, got {n}")
        torch.set_num_threads(n)
    return torch.get_num_threads()


def _device_timer(device: str | torch.device) -> Callable[[], float]:
    """A clock for Timer that synchronizes ``device`` before reading perf_counter (plain clock on CPU)."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return time.perf_counter

    def _timer() -> float:
        sync(dev)
        return time.perf_counter()

    return _timer


# ---------------------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------------------


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of already sorted values."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _rel_iqr(values: Sequence[float]) -> float:
    ordered = sorted(values)
    median = _quantile(ordered, 0.5)
    return (_quantile(ordered, 0.75) - _quantile(ordered, 0.25)) / median


@dataclass(frozen=True)
class Measurement:
    """Per-call times of one callable, one sample per replicate block (block time / number_per_run)."""

    times_s: tuple[float, ...]
    number_per_run: int
    warmup_s: float
    first_call_s: float
    num_threads: int
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.times_s:
            raise ValueError("a Measurement needs at least one sample")
        if self.number_per_run < 1:
            raise ValueError(f"number_per_run must be >= 1, got {self.number_per_run}")

    @property
    def n(self) -> int:
        """Number of replicate blocks (samples)."""
        return len(self.times_s)

    @property
    def median_s(self) -> float:
        """Median per-call time in seconds."""
        return statistics.median(self.times_s)

    @property
    def mean_s(self) -> float:
        """Mean per-call time in seconds."""
        return statistics.fmean(self.times_s)

    @property
    def min_s(self) -> float:
        """Fastest per-call time in seconds."""
        return min(self.times_s)

    @property
    def max_s(self) -> float:
        """Slowest per-call time in seconds."""
        return max(self.times_s)

    @property
    def iqr_s(self) -> float:
        """Inter-quartile range of the per-call times in seconds (linear interpolation)."""
        ordered = sorted(self.times_s)
        return _quantile(ordered, 0.75) - _quantile(ordered, 0.25)

    @property
    def rel_iqr(self) -> float:
        """IQR divided by the median: the relative spread of the samples."""
        return self.iqr_s / self.median_s

    @property
    def noisy(self) -> bool:
        """True when the relative IQR exceeds 10 %: the median should not be trusted for fine comparisons."""
        return self.rel_iqr > _IQR_WARN_THRESHOLD

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the raw samples and the derived statistics."""
        return {
            "times_s": list(self.times_s),
            "number_per_run": self.number_per_run,
            "warmup_s": self.warmup_s,
            "first_call_s": self.first_call_s,
            "num_threads": self.num_threads,
            "device": self.device,
            "n": self.n,
            "median_s": self.median_s,
            "mean_s": self.mean_s,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "iqr_s": self.iqr_s,
            "rel_iqr": self.rel_iqr,
            "noisy": self.noisy,
        }


def _grow_number(number: int, block_s: float, min_block_s: float) -> int:
    """Next block size aimed at ``min_block_s`` (with margin), at least doubling, at most 100x."""
    wanted = math.ceil(number * min_block_s * _BLOCK_MARGIN / block_s)
    grown = max(number * 2, min(wanted, number * _MAX_BLOCK_GROWTH))
    return min(grown, _MAX_NUMBER_PER_RUN)


def measure(
    fn: Callable[[], object],
    *,
    device: str = "cpu",
    min_replicates: int = 5,
    max_time_s: float = 2.0,
    target_rel_iqr: float = 0.05,
    min_block_s: float = 0.01,
) -> Measurement:
    """Time ``fn()`` robustly with ``torch.utils.benchmark.Timer``; never returns a single sample.

    The first call is timed on its own (``first_call_s``). Then the block size ``number_per_run`` grows until
    one block of calls lasts at least ``min_block_s`` and warm-up continues until two consecutive blocks agree
    within 10 % (bounded by a quarter of ``max_time_s``). Blocks are then collected until
    ``n >= min_replicates`` and the relative IQR is at most ``target_rel_iqr``, or until ``max_time_s``
    (a soft budget for warm-up plus sampling, excluding the first call) is spent; at least
    ``min_replicates`` blocks are always collected. Block times are synchronized on ``device``.
    The thread count is not changed: it is the one in force (see :func:`set_threads`) and is recorded.
    """
    if min_replicates < _MIN_REPLICATES_FLOOR:
        raise ValueError(f"min_replicates must be >= {_MIN_REPLICATES_FLOOR}, got {min_replicates}")
    if max_time_s <= 0 or min_block_s <= 0 or target_rel_iqr < 0:
        raise ValueError("max_time_s and min_block_s must be > 0 and target_rel_iqr >= 0")
    dev = torch.device(device)
    threads = torch.get_num_threads()
    # num_threads=threads: Timer's default (1) would silently run the callable single-threaded.
    timer = Timer(stmt="fn()", globals={"fn": fn}, timer=_device_timer(dev), num_threads=threads)
    # Timer._timeit(number) runs `number` calls between two clock reads (sync'd on the device) and returns the
    # block's total seconds: exact per-block times with no extra warm-up or thread switching per block.
    first_call_s = timer._timeit(1)

    start = time.perf_counter()
    warmup_cap_s = max(_WARMUP_MIN_S, _WARMUP_MAX_FRACTION * max_time_s)
    number = 1
    warm: list[float] = []
    while True:
        block_s = timer._timeit(number)
        elapsed = time.perf_counter() - start
        if block_s < min_block_s and number < _MAX_NUMBER_PER_RUN:
            number = _grow_number(number, block_s, min_block_s)
            warm.clear()
            continue
        warm.append(block_s / number)
        if elapsed >= warmup_cap_s:
            break
        if len(warm) >= _WARMUP_MIN_BLOCKS and elapsed >= _WARMUP_MIN_S:
            prev, last = warm[-2], warm[-1]
            if abs(last - prev) <= _WARMUP_STABLE_TOL * min(prev, last):
                break
    warmup_s = time.perf_counter() - start

    times: list[float] = []
    while True:
        times.append(timer._timeit(number) / number)
        if len(times) < min_replicates:
            continue
        if _rel_iqr(times) <= target_rel_iqr or time.perf_counter() - start >= max_time_s:
            break
    return Measurement(
        times_s=tuple(times),
        number_per_run=number,
        warmup_s=warmup_s,
        first_call_s=first_call_s,
        num_threads=threads,
        device=str(dev),
    )


# ---------------------------------------------------------------------------------------------------------
# FLOPs and parameters
# ---------------------------------------------------------------------------------------------------------


def _conv_backward_flop(
    grad_out_shape: Sequence[int],
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    _bias: object,
    _stride: object,
    _padding: object,
    _dilation: object,
    transposed: bool,
    _output_padding: object,
    groups: int,
    output_mask: Sequence[bool],
    out_shape: Sequence[Sequence[int] | None] = (),
    **_kwargs: object,
) -> int:
    """torch's convolution_backward FLOP formula with the weight-gradient term divided by ``groups``.

    torch (2.14) counts that term as if the convolution were dense, so a depthwise convolution's backward is
    overcounted by its channel count (pytorch/pytorch#183405 divides by groups too); the grad-input term is
    right.
    """
    from torch.utils.flop_counter import conv_flop_count

    def t(shape: Sequence[int]) -> list[int]:
        return [shape[1], shape[0], *shape[2:]]

    flops = 0
    if output_mask[0] and out_shape[0] is not None:
        flops += conv_flop_count(list(grad_out_shape), list(w_shape), list(out_shape[0]), not transposed)
    if output_mask[1] and out_shape[1] is not None:
        grad_w = t(out_shape[1])
        if transposed:
            flops += conv_flop_count(t(grad_out_shape), t(x_shape), grad_w, transposed=False) // groups
        else:
            flops += conv_flop_count(t(x_shape), t(grad_out_shape), grad_w, transposed=False) // groups
    return flops


#: Formulas that replace torch's in every FlopCounterMode here (see _conv_backward_flop for why).
_FLOP_FIXES: dict[Any, Callable[..., int]] = {torch.ops.aten.convolution_backward: _conv_backward_flop}


def count_flops(fn: Callable[_P, object], *args: _P.args, **kwargs: _P.kwargs) -> int:
    """FLOPs of one call ``fn(*args, **kwargs)`` per ``torch.utils.flop_counter`` (2 per multiply-add).

    A grouped convolution's backward is counted per group (torch overcounts it; see _conv_backward_flop).
    """
    with FlopCounterMode(display=False, custom_mapping=_FLOP_FIXES) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def _scalar_of(output: object) -> torch.Tensor:
    """Reduce a model output (tensor or nested tuple/list/dict of tensors) to one scalar for backward."""
    if isinstance(output, torch.Tensor):
        return output.sum()
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        parts = [_scalar_of(o) for o in output if isinstance(o, (torch.Tensor, tuple, list, Mapping))]
        if parts:
            return torch.stack([p.to(parts[0].dtype) for p in parts]).sum()
    raise TypeError(f"cannot backpropagate through a model output of type {type(output).__name__}")


def model_flops(
    model: torch.nn.Module,
    example_input: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    backward: bool,
) -> int:
    """FLOPs of ``model(*example_input)`` forward, or forward+backward when ``backward`` is True.

    The forward pass runs under ``torch.no_grad``. The backward pass differentiates the sum of the outputs
    with respect to every parameter that requires grad (and every input that does); their ``.grad``
    attributes are restored afterwards. It runs with inference mode off, so the inputs must not be inference
    tensors. The model's train/eval mode is left as it is (it does not change the count of the counted ops).
    """
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    if not backward:
        with torch.no_grad():
            return count_flops(model, *inputs)
    targets: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    targets += [t for t in inputs if t.requires_grad]
    if not targets:
        raise ValueError("backward FLOPs need a parameter or an input that requires grad")

    def _step() -> None:
        # inference_mode(False): a caller's inference mode would otherwise block autograd.
        with torch.inference_mode(False), torch.enable_grad():
            loss = _scalar_of(model(*inputs))
            # backward(inputs=...), not autograd.grad: FlopCounterMode's module hooks reject autograd.grad
            # when an input requires grad. The .grad attributes it fills are restored below.
            torch.autograd.backward(loss, inputs=targets)

    saved_grads = [t.grad for t in targets]
    for t in targets:
        t.grad = None
    try:
        return count_flops(_step)
    finally:
        for t, grad in zip(targets, saved_grads, strict=True):
            t.grad = grad


def param_count(model: torch.nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``model`` (only those requiring grad if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ---------------------------------------------------------------------------------------------------------
# GEMM peak probe
# ---------------------------------------------------------------------------------------------------------

GemmPeakKey = tuple[str, torch.dtype, int, int, str]
"""Cache key of :func:`peak_gemm_flops`: (device, dtype, threads, n, fp32 matmul precision)."""

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
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"cannot probe {dev}: CUDA is not available")
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


# ---------------------------------------------------------------------------------------------------------
# Peak memory
# ---------------------------------------------------------------------------------------------------------


def peak_memory_bytes(fn: Callable[[], object], device: str) -> int | None:
    """Peak device memory allocated by torch while ``fn()`` runs; ``None`` on CPU (use cpu_peak_rss_bytes).

    On CUDA the peak counter is reset first, so the figure is the high-water mark of allocated memory during
    the call, including tensors that were already allocated (weights, inputs). Other accelerators use
    ``torch.accelerator``'s memory API when it exists; ``None`` when the device has no such counter.
    """
    dev = torch.device(device)
    if dev.type == "cpu":
        return None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"cannot measure memory on {dev}: CUDA is not available")
        sync(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        fn()
        sync(dev)
        return int(torch.cuda.max_memory_allocated(dev))
    accelerator = getattr(torch, "accelerator", None)
    if (
        accelerator is not None
        and hasattr(accelerator, "reset_peak_memory_stats")
        and hasattr(accelerator, "max_memory_allocated")
        and accelerator.is_available()
    ):
        sync(dev)
        accelerator.reset_peak_memory_stats(dev)
        fn()
        sync(dev)
        return int(accelerator.max_memory_allocated(dev))
    return None


@dataclass(frozen=True)
class RssPeak:
    """Resident-set sizes of a fresh child process around one call, in bytes."""

    peak_bytes: int  # the child's peak RSS: during the call if peak_covers_call_only, else whole lifetime
    baseline_bytes: int  # the child's current RSS just before the call (after importing the target)
    baseline_peak_bytes: int  # the child's high-water RSS just before the call (interpreter + imports)
    peak_covers_call_only: bool  # True when the high-water mark was reset just before the call (Linux)

    @property
    def increment_bytes(self) -> int:
        """How far the peak rose above the RSS in force just before the call."""
        return self.peak_bytes - self.baseline_bytes


def cpu_peak_rss_bytes(
    target: str,
    kwargs: Mapping[str, Any] | None = None,
    *,
    timeout_s: float = _RSS_TIMEOUT_S,
) -> RssPeak:
    """Run ``module:function(**kwargs)`` once in a fresh Python process and return its RSS figures.

    A true CPU peak needs an isolated process, since the RSS high-water mark is per process. On Linux the
    child reads VmHWM (not ``ru_maxrss``, which a child inherits from a big parent across exec) after
    resetting it just before the call, so ``peak_bytes`` is the child's peak RSS during the call and
    ``increment_bytes`` what the call added; elsewhere it falls back to ``ru_maxrss`` (lifetime peak).
    The target is imported by name (no code from strings): pass only allowlisted, trusted targets.
    ``kwargs`` must be JSON-serialisable. The child sees this process's ``sys.path`` (via ``PYTHONPATH``),
    so anything importable here is importable there. Unix only (uses ``resource``). Raises ``RuntimeError``
    when the child fails or times out.
    """
    if not _RSS_TARGET_RE.match(target):
        raise ValueError(f"target must look like 'package.module:function', got {target!r}")
    try:
        kwargs_json = json.dumps(dict(kwargs or {}))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"kwargs must be JSON-serialisable: {exc}") from exc
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    with tempfile.TemporaryDirectory(prefix="cnnbench-rss-") as tmp:
        out_path = os.path.join(tmp, "rss.json")
        cmd = [sys.executable, "-c", _RSS_CHILD_CODE, target, kwargs_json, out_path]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"peak-RSS child for {target} timed out after {timeout_s} s") from exc
        if proc.returncode != 0 or not os.path.exists(out_path):
            tail = proc.stderr[-_STDERR_TAIL_CHARS:]
            raise RuntimeError(f"peak-RSS child for {target} failed (exit {proc.returncode}):\n{tail}")
        with open(out_path) as f:
            data = json.load(f)
    return RssPeak(
        peak_bytes=int(data["peak"]),
        baseline_bytes=int(data["baseline"]),
        baseline_peak_bytes=int(data["baseline_peak"]),
        peak_covers_call_only=bool(data["call_only"]),
    )

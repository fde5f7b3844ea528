"""Run one benchmark variant into a ``bench`` row: timing, FLOPs and bytes moved, correctness (the roofline against
the machine's ceilings is added by cnnbench.bench.ceilings.apply_roofline, where the run keeps its ceilings)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnbench import device as device_module
from cnnbench.bench.flops import model_flops, param_count
from cnnbench.bench.memory import cpu_peak_rss_bytes, peak_memory_bytes
from cnnbench.bench.models import TORCHVISION_MODELS
from cnnbench.bench.roofline import BYTES_NOTE, variant_traffic
from cnnbench.bench.timing import Measurement, measure, sync
from cnnbench.bench.workload import Workload, build_workload, first_tensor, meta_workload, torchvision_missing
from cnnbench.casefile.load import load_file
from cnnbench.casefile.variants import BenchVariant, expand_benchmarks
from cnnbench.environment import device_available
from cnnbench.errors import CnnbenchError
from cnnbench.numerics.runner import describe_exception
from cnnbench.ops.catalog import module_op
from cnnbench.ops.precision import math_kind, math_kind_of
from cnnbench.store.result import Result
from cnnbench.store.rows import bench_base_result, unavailable_reason

__all__ = [
    "CHECK_THRESHOLDS",
    "ReferenceCheck",
    "Timing",
    "bench_compute_precision",
    "check_against_reference",
    "count_variant_flops",
    "measure_variant",
    "peak_memory_child",
    "run_benchmark",
]

#: Per dtype: the largest max|out - ref| / max|ref| allowed against the float32 contiguous output. float32
#: runs differ from the reference only by summation order and kernel choice (oneDNN's Winograd, TF32 on CUDA):
#: ~1e-5 to 1e-4 after tens of layers, so 1e-3 flags only wrong results. float16 keeps 11 bits (about 5e-4
#: per rounding), bfloat16 8 bits (4e-3 per rounding); through a deep network they drift to a few 1e-3 and
#: 1e-2, so 2e-2 and 1e-1 leave room for depth while a broken kernel (errors of order 1) still fails.
CHECK_THRESHOLDS: dict[str, float] = {"float64": 1e-3, "float32": 1e-3, "float16": 2e-2, "bfloat16": 1e-1}
#: Smallest share of samples whose top-1 class must agree with float32 (near-ties forgiven: see _top1).
_DEFAULT_MIN_TOP1 = 1.0
#: Reference outputs kept for the correctness check: the rows of one benchmark share one, and a run moves on.
_REFERENCE_CACHE_SIZE = 4
#: Why CPU rows have no peak memory unless asked: a fresh interpreter importing torch costs seconds per row.
_CPU_MEMORY_NOTE = (
    "not measured: a true CPU peak needs a fresh process per row (seconds of torch import); "
    "set cpu_peak_memory: true on the benchmark to measure it"
)

Timing = Callable[[Callable[[], object], BenchVariant], Measurement]
"""How a workload's step is timed: timing.measure by default, pytest-benchmark's fixture under pytest."""


@dataclass(frozen=True)
class ReferenceCheck:
    """The variant's output against the float32 contiguous reference on the same device."""

    max_abs_err: float
    max_rel_err: float
    """max_abs_err divided by the largest reference magnitude."""
    top1_agreement: float | None
    """Share of samples whose argmax class agrees (None when the output is not (batch, classes) logits)."""
    problems: tuple[str, ...]
    """Why the check failed; empty when it passed."""


def measure_variant(step: Callable[[], object], variant: BenchVariant) -> Measurement:
    """Time step with timing.measure and the benchmark's knobs (time budget, replicates, target spread)."""
    spec = variant.case.spec
    return measure(
        step,
        device=variant.device,
        min_replicates=spec.min_replicates,
        max_time_s=variant.time_budget_s,
        target_rel_iqr=spec.target_rel_iqr,
        cold_cache=spec.cold_cache and device_module.event_pair(variant.device) is not None,
    )


class _CallModule(nn.Module):
    """An op as a module, so model_flops can count it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.fn(*inputs)


_FLOPS: dict[tuple[str, str, int], tuple[int, int]] = {}


def count_variant_flops(variant: BenchVariant) -> tuple[int, int]:
    """FLOP of one call at the variant's batch, forward and forward+backward, counted on the meta device.

    The count depends on shapes only (not dtype, memory format or device), so it is made once per benchmark
    and batch, without allocating or initialising anything.
    """
    key = (variant.case.file, variant.case.id, variant.batch)
    if key not in _FLOPS:
        fn, module, inputs = meta_workload(variant)
        model = module if module is not None else _CallModule(fn)
        forward = model_flops(model, tuple(inputs), backward=False)
        both = model_flops(model.train(), tuple(inputs), backward=True)
        _FLOPS[key] = (forward, both)
    return _FLOPS[key]


_REFERENCES: OrderedDict[tuple[str, str, str, int], torch.Tensor] = OrderedDict()


def _reference_output(variant: BenchVariant) -> torch.Tensor:
    """The float32 contiguous eager output of the variant's benchmark at its batch and device (cached)."""
    key = (variant.case.file, variant.case.id, variant.device, variant.batch)
    if key not in _REFERENCES:
        workload = build_workload(
            variant, dtype="float32", memory_format="contiguous", mode="inference", autocast=False
        )
        reference = first_tensor(workload.forward()).detach().float()
        _REFERENCES[key] = reference
        while len(_REFERENCES) > _REFERENCE_CACHE_SIZE:
            _REFERENCES.popitem(last=False)
    _REFERENCES.move_to_end(key)
    return _REFERENCES[key]


def _is_reference(variant: BenchVariant) -> bool:
    return (
        variant.dtype == "float32"
        and variant.memory_format == "contiguous"
        and not variant.compile
        and not variant.autocast
    )


def bench_compute_precision(variant: BenchVariant) -> str:
    """What a benchmark row computes in: its dtype for half types and autocast, else the float32 flags'
    precision of its convolutions (a model: convolutions) or matmuls on its device."""
    if variant.dtype != "float32":
        return variant.dtype
    spec = variant.case.spec
    if spec.model is not None:
        kind = "conv"
    elif spec.op is not None:
        kind = math_kind(spec.op)
    else:
        modules = [layer.module for layer in spec.layers] if spec.layers is not None else [spec.module]
        kind = math_kind_of(module_op(m) for m in modules)
    return device_module.compute_precision("float32", kind, variant.device)


def _top1(out: torch.Tensor, ref: torch.Tensor, near_tie: float) -> tuple[float, list[str]]:
    """Top-1 agreement, and the samples whose class changed although float32 tells the two classes apart.

    A flip between classes whose float32 logits are within near_tie of each other is within the dtype's
    tolerance (with batch 1 a single such tie would otherwise fail the row), so it is not a disagreement.
    """
    got, want = out.argmax(dim=1), ref.argmax(dim=1)
    agree = float((got == want).float().mean())
    flips = []
    for i in torch.nonzero(got != want).flatten().tolist():
        margin = float(ref[i, want[i]] - ref[i, got[i]])
        if margin > near_tie:
            flips.append(
                f"sample {i}: top-1 class {int(got[i])} instead of {int(want[i])} "
                f"(float32 margin {margin:.3g} > near-tie {near_tie:.3g})"
            )
    return agree, flips


def check_against_reference(variant: BenchVariant, out: torch.Tensor, ref: torch.Tensor) -> ReferenceCheck:
    """Compare the variant's output with the float32 contiguous one: max error and top-1 agreement."""
    spec = variant.case.spec
    max_rel = spec.check.max_rel_err if spec.check and spec.check.max_rel_err is not None else None
    max_rel = CHECK_THRESHOLDS[variant.dtype] if max_rel is None else max_rel
    min_top1 = spec.check.min_top1 if spec.check and spec.check.min_top1 is not None else _DEFAULT_MIN_TOP1
    got = out.detach().float()
    if got.shape != ref.shape:
        return ReferenceCheck(
            math.inf, math.inf, None, (f"output shape {list(got.shape)} != float32's {list(ref.shape)}",)
        )
    diff = (got - ref).abs()
    max_abs = float(diff.max()) if diff.numel() else 0.0
    if not math.isfinite(max_abs) and bool(torch.isfinite(ref).all()):
        max_abs = math.inf
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    problems: list[str] = []
    if not rel <= max_rel:
        problems.append(
            f"max |out - float32| = {max_abs:.3g} is {rel:.3g} of max |float32| = {scale:.3g}, "
            f"over the {variant.dtype} threshold {max_rel:g}"
        )
    top1: float | None = None
    if ref.dim() == 2 and ref.shape[1] > 1:
        top1, flips = _top1(got, ref, 2 * max_rel * scale)
        forgiven = 1.0 - len(flips) / ref.shape[0]
        if forgiven < min_top1:
            shown = "; ".join(flips[:3]) + (f"; and {len(flips) - 3} more" if len(flips) > 3 else "")
            problems.append(f"top-1 agreement {top1:.3f} (below {min_top1:g} beyond near-ties): {shown}")
    return ReferenceCheck(max_abs, rel, top1, tuple(problems))


def _skip_reason(variant: BenchVariant) -> str | None:
    rule = variant.skip_rule
    if rule is not None:
        return rule.reason
    if not device_available(variant.device):
        return unavailable_reason(variant)
    model = variant.case.spec.model
    if model in TORCHVISION_MODELS:
        return torchvision_missing()
    return None


def _timing_metrics(m: Measurement) -> dict[str, Any]:
    return {
        "median_ms": m.median_s * 1e3,
        "iqr_ms": m.iqr_s * 1e3,
        "min_ms": m.min_s * 1e3,
        "mean_ms": m.mean_s * 1e3,
        "n": m.n,
        "times_ms": [t * 1e3 for t in m.times_s],
        "rel_iqr": m.rel_iqr,
        "noisy": m.noisy,
        "number_per_run": m.number_per_run,
        "first_call_ms": m.first_call_s * 1e3,
        "warmup_ms": m.warmup_s * 1e3,
        "threads": m.num_threads,
    }


def _traffic_metrics(variant: BenchVariant, measurement: Measurement) -> dict[str, Any]:
    """Bytes one call moves at least (roofline.variant_traffic) and the GB/s that makes."""
    try:
        traffic = variant_traffic(variant)
    except Exception as exc:  # an op without a meta kernel: no bytes, no roofline
        return {"bytes_note": f"not counted: {describe_exception(exc)}"}
    out: dict[str, Any] = {"bytes_moved": traffic.total, "bytes_note": BYTES_NOTE}
    if measurement.median_s > 0 and traffic.total > 0:
        out["gbs"] = traffic.total / measurement.median_s / 1e9
    return out


def _memory_metrics(variant: BenchVariant, workload: Workload) -> dict[str, Any]:
    if variant.device != "cpu" and not variant.device.startswith("cpu:"):
        return {"peak_mem_bytes": peak_memory_bytes(workload.step, variant.device)}
    if not variant.case.spec.cpu_peak_memory:
        return {"peak_mem_bytes": None, "peak_mem_note": _CPU_MEMORY_NOTE}
    kwargs = {"file": variant.case.file, "variant_id": variant.id, "threads": torch.get_num_threads()}
    rss = cpu_peak_rss_bytes("cnnbench.bench.runner:peak_memory_child", kwargs)
    note = "peak RSS of a fresh process loading, building and running two steps, above its RSS before"
    if not rss.peak_covers_call_only:
        note += " (lifetime peak: the high-water mark could not be reset here)"
    return {"peak_mem_bytes": rss.increment_bytes, "peak_rss_bytes": rss.peak_bytes, "peak_mem_note": note}


def peak_memory_child(file: str, variant_id: str, threads: int) -> None:
    """In a fresh process (memory.cpu_peak_rss_bytes): build a benchmark variant and run two of its steps."""
    torch.set_num_threads(threads)
    found = {v.id: v for v in expand_benchmarks(load_file(file).benchmarks)}
    if variant_id not in found:
        raise CnnbenchError(f"{file} has no benchmark variant {variant_id}")
    workload = build_workload(found[variant_id])
    for _ in range(2):
        workload.step()
    sync(workload.device)


def _set_cudnn_benchmark(flag: bool) -> None:
    """torch.backends.cudnn.benchmark = flag, also where an import of torch.testing._internal has frozen the
    global flags (disable_global_flags), which makes the plain assignment raise. set_flags's own default would
    also reset the fp32 precision ("none"): None keeps it (older torch has no such parameter)."""
    try:
        torch.backends.cudnn.set_flags(_benchmark=flag, _fp32_precision=None)
    except TypeError:
        torch.backends.cudnn.set_flags(_benchmark=flag)


def run_benchmark(variant: BenchVariant, timing: Timing | None = None) -> Result:
    """Time one benchmark variant and return its row; nothing it does escapes as an exception.

    The row is ``skipped`` (device or torchvision unavailable, or a skip rule), ``failed`` when its output
    disagrees with the float32 contiguous one beyond the dtype's threshold (it is timed all the same),
    ``error`` when building or running it raises, and ``passed`` otherwise. timing replaces
    measure_variant (cnnbench.bench.pytest_timing's under pytest-benchmark).
    """
    result = bench_base_result(variant)
    start = time.perf_counter()
    reason = _skip_reason(variant)
    if reason is not None:
        result.status, result.reason = "skipped", reason
        return result
    metrics = result.metrics
    benchmark_flag = torch.backends.cudnn.benchmark
    try:
        # cuDNN autotuning per row (what training scripts set); the warm-up covers its first-call search.
        _set_cudnn_benchmark(variant.case.spec.cudnn_benchmark)
        metrics["cudnn_benchmark"] = variant.case.spec.cudnn_benchmark
        metrics["cold_cache"] = variant.case.spec.cold_cache
        result.compute_precision = bench_compute_precision(variant)
        workload = build_workload(variant)
        module = workload.module
        metrics["params"] = param_count(module) if module is not None else 0
        try:
            flop_fwd, flop_both = count_variant_flops(variant)
        except Exception as exc:  # an op without a meta kernel: the row is still timed, without FLOP figures
            flop_fwd = flop_both = 0
            metrics["flop_note"] = f"not counted: {describe_exception(exc)}"
        else:
            metrics["flop_fwd"] = flop_fwd / variant.batch
            metrics["flop_fwd_bwd"] = flop_both / variant.batch
            metrics["gmacs"] = flop_fwd / variant.batch / 2 / 1e9
        measurement = (timing or measure_variant)(workload.step, variant)
        metrics.update(_timing_metrics(measurement))
        per_call = flop_both if variant.mode == "train" else flop_fwd
        if measurement.median_s > 0:
            metrics["samples_per_s"] = variant.batch / measurement.median_s
        if measurement.median_s > 0 and per_call > 0:  # FlopCounterMode counts no pooling: no FLOP/s then
            metrics["gflops"] = per_call / measurement.median_s / 1e9
        if "flop_note" not in metrics:
            metrics["flop"] = per_call
        metrics.update(_traffic_metrics(variant, measurement))
        problems: tuple[str, ...] = ()
        if not _is_reference(variant):
            check_source = (
                workload if variant.mode == "inference" else build_workload(variant, mode="inference")
            )
            check = check_against_reference(
                variant, first_tensor(check_source.forward()), _reference_output(variant)
            )
            metrics["max_abs_err_vs_fp32"] = check.max_abs_err
            metrics["max_rel_err_vs_fp32"] = check.max_rel_err
            metrics["top1_agreement"] = check.top1_agreement
            problems = check.problems
        metrics.update(_memory_metrics(variant, workload))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        result.status, result.message = "error", describe_exception(exc)
        if device_module.context_poisoned(exc):
            metrics["context_poisoned"] = True
    else:
        result.status = "failed" if problems else "passed"
        result.message = "\n".join(problems)
    finally:
        _set_cudnn_benchmark(benchmark_flag)
    result.duration_s = time.perf_counter() - start
    return result

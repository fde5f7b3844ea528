"""Synthetic stored runs for report and compare tests: check rows and bench rows with seeded replicates."""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any

from cnnbench.store.result import Result, count_statuses
from cnnbench.store.run import Run, RunStore

__all__ = ["ENV", "bench_row", "check_row", "drifted_row", "make_run", "replicates"]

#: A plausible environment fingerprint; tests override single keys.
ENV: dict[str, Any] = {
    "torch_version": "2.14.1",
    "python_version": "3.11.7",
    "cpu_model": "Synthetic CPU",
    "cpu_capability": "AVX2",
    "num_threads": 2,
    "mkldnn_enabled": True,
    "torch_debug": False,
    "devices": ["cpu"],
    "hostname": "ci",
}


def check_row(case_id: str, dtype: str = "float32", status: str = "passed", **kw: Any) -> Result:
    """A numerics row; max errors and a digest default to those of a passing float result."""
    values: dict[str, Any] = {
        "variant_id": f"{case_id}[cpu-{dtype}]",
        "case_id": case_id,
        "file": kw.pop("file", "cases/synthetic.yaml"),
        "line": kw.pop("line", 3),
        "target": kw.pop("target", "conv2d"),
        "device": "cpu",
        "dtype": dtype,
        "status": status,
        "max_abs_err": 1e-7,
        "max_rel_err": 1e-7,
        "mismatches": 0,
        "numel": 16,
        "atol": 1e-5,
        "rtol": 1.3e-6,
        "output_digest": "0123456789abcdef",
        "duration_s": 0.002,
        "budget_used": 0.01,
        "ulps_max": 1.0,
        "ulps_p99": 0.5,
    }
    values.update(kw)
    return Result(**values)


def drifted_row(case_id: str, k: int, dtype: str = "float32", **kw: Any) -> Result:
    """A passing row whose output is a fixed tensor moved k representable numbers of dtype away from its
    expected values, measured by check_close as a variant's output is (budget, ulps, errors, digest)."""
    import hashlib

    import torch

    from cnnbench.numerics.checks import check_close
    from cnnbench.numerics.tolerance import Tolerance

    torch_dtype = getattr(torch, dtype)
    expected = (torch.linspace(-3.0, 5.0, 64, dtype=torch.float64) + 0.01).to(torch_dtype)
    got = expected.clone()
    for _ in range(k):
        got = torch.nextafter(got, torch.full_like(got, float("inf")))
    tolerance = kw.pop("tolerance", Tolerance(atol=1e-5, rtol=64 * torch.finfo(torch_dtype).eps))
    check = check_close("output", got, expected.to(torch.float64), tolerance)
    status = "passed" if check.passed else "failed"
    return check_row(
        case_id,
        dtype,
        status=status,
        max_abs_err=check.max_abs_err,
        max_rel_err=check.max_rel_err,
        mismatches=check.mismatches,
        numel=check.numel,
        atol=tolerance.atol,
        rtol=tolerance.rtol,
        budget_used=check.budget_used,
        ulps_max=check.ulps_max,
        ulps_p99=check.ulps_p99,
        output_digest=hashlib.sha256(got.numpy().tobytes()).hexdigest()[:16],
        message=check.message,
        **kw,
    )


def replicates(median_ms: float, n: int = 15, spread: float = 0.02, seed: int = 0) -> list[float]:
    """n timings around median_ms with relative Gaussian noise of the given spread."""
    rng = random.Random(seed)
    return [median_ms * (1 + rng.gauss(0, spread)) for _ in range(n)]


def bench_row(model: str, times_ms: list[float], dtype: str = "float32", **kw: Any) -> Result:
    """A benchmark row whose metrics are derived from its replicate times, as a bench runner stores them."""
    median = statistics.median(times_ms)
    q = statistics.quantiles(times_ms, n=4)
    batch = kw.pop("batch", 8)
    metrics = {
        "times_ms": times_ms,
        "median_ms": median,
        "iqr_ms": q[2] - q[0],
        "samples_per_s": batch / (median / 1000),
        "gflops": 3.63 * batch / (median / 1000),
        "gbs": 1.5,
        "bound": "compute",
        "pct_of_bound": 42.0,
        "noisy": (q[2] - q[0]) / median > 0.1,
        "num_threads": 2,
    }
    metrics.update(kw.pop("metrics", {}))
    return Result(
        variant_id=f"bench-{model}-b{batch}[cpu-{dtype}]",
        case_id=f"bench-{model}-b{batch}",
        file="cases/bench/models.yaml",
        line=kw.pop("line", 5),
        target=model,
        device="cpu",
        dtype=dtype,
        status=kw.pop("status", "passed"),
        kind="bench",
        metrics=metrics,
        duration_s=sum(times_ms) / 1000,
        **kw,
    )


def make_run(path: Path, results: list[Result], env: dict[str, Any] | None = None, **meta: Any) -> Run:
    """Store results as a complete run at path and return it as loaded back."""

    full_meta: dict[str, Any] = {
        "run_id": path.name,
        "complete": True,
        "case_files_hash": "abc123",
        "environment": {**ENV, **(env or {})},
        "counts": dict(count_statuses(results)),
        "started_at": "2026-01-01T00:00:00Z",
        **meta,
    }
    RunStore.save(Run(path=path, meta=full_meta, results=results), path)
    return RunStore().load(str(path))

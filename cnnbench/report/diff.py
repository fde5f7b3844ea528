"""Diff two stored runs: numeric drift (status, tolerance, bitwise output) and real performance changes."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnbench.errors import UsageError, first_line
from cnnbench.report.accepted import Accepted, AcceptedEntry
from cnnbench.report.change import Change
from cnnbench.report.drift import Drift, DriftLimits, drift_regressions, numerics_drift
from cnnbench.report.pattern import variant_pattern
from cnnbench.report.significance import P_THRESHOLD, is_different
from cnnbench.store.result import FAILING, Result
from cnnbench.store.run import Run

__all__ = [
    "Comparison",
    "Thresholds",
    "compare_runs",
    "environment_key",
    "parse_group_threshold",
]

#: Default fractional threshold on the ratio of medians (asv's default factor is 1.1 as well).
DEFAULT_THRESHOLD = 0.1
#: Differences in median below this are timer resolution and scheduling noise, whatever the ratio says.
DEFAULT_NOISE_FLOOR_MS = 0.01
#: Environment keys that make numerics or speed on the CPU differ between machines (torch's own version is
#: what a comparison across versions is about, so it is not among them).
_CPU_KEYS = ("cpu_model", "cpu_capability", "num_threads", "mkldnn_enabled", "torch_debug")
#: Keys runs record since the fp32 precision flags and the GPU fingerprint were added: compared only when both
#: runs recorded them (a run from before says nothing about them, which is no difference).
_RECORDED_CPU_KEYS = ("mkldnn_conv_fp32_precision", "mkldnn_matmul_fp32_precision")
#: The same for an accelerator: its name and the flags that switch kernels or precision.
_ACCEL_KEYS = (
    "cuda_matmul_allow_tf32",
    "cudnn_allow_tf32",
    "cudnn_benchmark",
    "cudnn_deterministic",
    "deterministic_algorithms",
    "float32_matmul_precision",
    "torch_debug",
)
_RECORDED_ACCEL_KEYS = ("cudnn_conv_fp32_precision", "cuda_matmul_fp32_precision", "cudnn_version")
#: What the GPU's fingerprint (cnnbench.device.gpu_fingerprint) adds: rows on GPUs differing in any of these
#: are not compared as regressions (another GPU, clocks or power cap, cuDNN or cuBLAS build).
_GPU_KEYS = (
    "name",
    "capability",
    "sm_count",
    "clock_rate_khz",
    "sm_clock_max_mhz",
    "power_limit_w",
    "cudnn_version",
    "cublas_version",
    "driver_version",
)


@dataclass(frozen=True)
class Thresholds:
    """When a performance change counts: the ratio of medians must pass the fraction for the row's group, the
    medians must differ by more than the noise floor, and the replicates must differ significantly."""

    default: float = DEFAULT_THRESHOLD
    groups: tuple[tuple[str, float], ...] = ()
    """(pattern, fraction) pairs; the first whose pattern matches the row's target, case id, case file stem or
    variant id (shell-style * and ?) wins."""
    noise_floor_ms: float = DEFAULT_NOISE_FLOOR_MS
    p_threshold: float = P_THRESHOLD

    def for_result(self, result: Result) -> float:
        """The fractional threshold for this row."""
        names = (result.target, result.case_id, Path(result.file).stem, result.variant_id)
        for pattern, fraction in self.groups:
            if any(variant_pattern(pattern).fullmatch(name) for name in names):
                return fraction
        return self.default


def parse_group_threshold(text: str) -> tuple[str, float]:
    """'GROUP=FRAC' (e.g. 'conv2d=0.2') as a (pattern, fraction) pair."""
    group, sep, value = text.rpartition("=")
    try:
        fraction = float(value)
    except ValueError:
        fraction = math.nan
    if not sep or not group or not math.isfinite(fraction) or fraction < 0:
        raise UsageError(f"--group-threshold {text!r}: expected GROUP=FRACTION, e.g. conv2d=0.2")
    return group, fraction


@dataclass
class Comparison:
    """Every difference between two runs, sorted into what fails a gate and what does not."""

    base_id: str
    new_id: str
    regressions: list[Change] = field(default_factory=list)
    improvements: list[Change] = field(default_factory=list)
    allowed: list[Change] = field(default_factory=list)
    """Regressions that an accepted difference covers (each with its reason)."""
    not_comparable: list[Change] = field(default_factory=list)
    """Rows whose environment keys differ: the bitwise and perf comparisons were not made."""
    status_changes: list[Change] = field(default_factory=list)
    """Status changes that are neither a regression nor a fix (e.g. passed -> skipped)."""
    only_in_base: list[str] = field(default_factory=list)
    only_in_new: list[str] = field(default_factory=list)
    compared: int = 0
    warnings: list[str] = field(default_factory=list)
    unused_accepted: list[AcceptedEntry] = field(default_factory=list)
    """Accepted differences that matched no change: stale entries."""
    drift: Drift = field(default_factory=Drift)
    """How budget used and ulps moved per variant and per target x dtype x device, pass or fail."""

    @property
    def new_failures(self) -> list[Change]:
        """Regressions of variants that fail in the new run and have no row in the base run."""
        return [ch for ch in self.regressions if ch.base is None]

    @property
    def regressed(self) -> bool:
        """True when anything got worse and is not an accepted difference: the gate fails."""
        return bool(self.regressions)

    def summary(self) -> str:
        """The counts in one line: regressions, improvements, allowed, not comparable, compared."""
        new = len(self.new_failures)
        parts = [
            f"{len(self.regressions)} regressions"
            + (f" ({new} new failure{'s' if new != 1 else ''})" if new else ""),
            f"{len(self.improvements)} improvements",
            f"{len(self.allowed)} allowed differences",
            f"{len(self.not_comparable)} not comparable",
            f"{self.compared} variants compared",
        ]
        return ", ".join(parts)

    def not_comparable_by_detail(self) -> dict[str, list[Change]]:
        """The rows not compared, grouped by which environment keys differed (most runs have one group)."""
        out: dict[str, list[Change]] = {}
        for change in self.not_comparable:
            out.setdefault(change.detail, []).append(change)
        return out


def environment_key(env: Mapping[str, Any], result: Result) -> dict[str, Any]:
    """The environment values this row's numerics and speed depend on (its device's kind decides which)."""
    kind, _, index = result.device.partition(":")
    if kind == "cpu":
        key = {k: env.get(k) for k in _CPU_KEYS} | {k: env[k] for k in _RECORDED_CPU_KEYS if k in env}
        # A bench row records the threads it ran with ("threads"; a pool's CPU benchmark has every core while
        # its checks ran with fewer), else the run's count applies.
        threads = result.metrics.get("threads", result.metrics.get("num_threads"))
        key["num_threads"] = threads if threads is not None else env.get("num_threads")
        return key
    key = {k: env.get(k) for k in _ACCEL_KEYS} | {k: env[k] for k in _RECORDED_ACCEL_KEYS if k in env}
    accelerators = env.get("accelerators") or []
    wanted = f"{kind}:{index or 0}"
    gpu: dict[str, Any] = next((a for a in accelerators if a.get("device") == wanted), {})
    key["device_name"] = gpu.get("name")
    key.update({f"gpu_{k}": gpu.get(k) for k in _GPU_KEYS[1:] if k in gpu})
    if "cudnn_benchmark" in result.metrics:  # chosen per benchmark row: the row's own choice counts
        key["cudnn_benchmark"] = result.metrics["cudnn_benchmark"]
    return key


def _err(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _err_change(base: Result, new: Result) -> str:
    """How the max abs error against the expected values moved: "0.01 -> 0.5"."""
    return f"{_err(base.max_abs_err)} -> {_err(new.max_abs_err)}"


def _times(result: Result) -> list[float]:
    times = result.metrics.get("times_ms")
    if isinstance(times, list):
        return [float(t) for t in times if isinstance(t, int | float)]
    return []


def _median(result: Result) -> float | None:
    value = result.metrics.get("median_ms")
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    times = _times(result)
    if times:
        ordered = sorted(times)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return None


class _Collector:
    """Files each change under its list: a regression that an accepted difference covers is allowed instead."""

    def __init__(self, comparison: Comparison, accepted: Accepted) -> None:
        self.comparison = comparison
        self.accepted = accepted

    def regression(self, change: Change) -> None:
        entry = self.accepted.match(change.variant_id, change.kind)
        if entry is None:
            self.comparison.regressions.append(change)
        else:
            self.comparison.allowed.append(dataclasses.replace(change, allowed=entry.reason))


def _compare_numerics(base: Result, new: Result, comparable: bool, out: _Collector) -> None:
    vid = new.variant_id
    if base.status != new.status:
        detail = f"{base.status} -> {new.status}"
        if new.status in FAILING and base.status not in FAILING:
            message = first_line(new.message)
            out.regression(Change(vid, "status", detail + (f": {message}" if message else ""), base, new))
            return
        if base.status in FAILING and new.status not in FAILING:
            out.comparison.improvements.append(Change(vid, "status", detail, base, new))
            return
        out.comparison.status_changes.append(Change(vid, "status", detail, base, new))
    base_bad, new_bad = base.mismatches or 0, new.mismatches or 0
    if new_bad > 0 and base_bad == 0 and base.max_abs_err is not None:
        detail = (
            f"{new_bad} of {new.numel} elements now outside tolerance (max abs err "
            f"{_err_change(base, new)}; atol {_err(new.atol)}, rtol {_err(new.rtol)})"
        )
        out.regression(Change(vid, "tolerance", detail, base, new))
        return
    if base_bad > 0 and new_bad == 0 and new.max_abs_err is not None and base.status == new.status:
        detail = f"back within tolerance (max abs err {_err_change(base, new)})"
        out.comparison.improvements.append(Change(vid, "tolerance", detail, base, new))
    if (
        comparable
        and base.output_digest
        and new.output_digest
        and base.output_digest != new.output_digest
        and base.status == new.status
    ):
        detail = (
            f"output no longer bitwise equal ({base.output_digest} -> {new.output_digest}; max abs err vs "
            f"expected {_err_change(base, new)})"
        )
        out.regression(Change(vid, "bitwise", detail, base, new))


def _new_failure(new: Result, out: _Collector) -> None:
    """A variant that fails in the new run and has no row in the base run: a regression (kind status), not
    merely "only in new", so that adding a failing case can never pass the gate."""
    if new.status not in FAILING:
        return
    message = first_line(new.message)
    detail = f"new failure (no row in base): {new.status}" + (f": {message}" if message else "")
    out.regression(Change(new.variant_id, "status", detail, None, new))


def _compare_perf(base: Result, new: Result, thresholds: Thresholds, out: _Collector) -> None:
    if base.status in FAILING or new.status in FAILING or "skipped" in (base.status, new.status):
        return
    base_ms, new_ms = _median(base), _median(new)
    if base_ms is None or new_ms is None:
        return
    if abs(new_ms - base_ms) < thresholds.noise_floor_ms:
        return
    ratio = new_ms / base_ms
    factor = 1 + thresholds.for_result(new)
    if 1 / factor <= ratio <= factor:
        return
    base_times, new_times = _times(base), _times(new)
    p_value = None
    if len(base_times) >= 2 and len(new_times) >= 2:
        significance = is_different(base_times, new_times, thresholds.p_threshold)
        if not significance.different:
            return
        p_value = significance.p_value
        how = f"p = {p_value:.2g}" if p_value is not None else "median intervals do not overlap"
    elif base.metrics.get("noisy") or new.metrics.get("noisy"):
        return  # no replicates to test, and the row itself says its median is not to be trusted
    else:
        how = "no replicates stored: ratio only"
    detail = f"median {base_ms:.4g} ms -> {new_ms:.4g} ms (x{ratio:.3f}, {how})"
    change = Change(new.variant_id, "perf", detail, base, new, ratio, p_value)
    if ratio > 1:
        out.regression(change)
    else:
        out.comparison.improvements.append(change)


def _run_warnings(base: Run, new: Run) -> list[str]:
    """What makes the whole comparison less telling: runs cut short, unreadable rows, other case files."""
    warnings = []
    for run, name in ((base, "base"), (new, "new")):
        if not run.complete:
            warnings.append(f"the {name} run {run.run_id} is incomplete: some variants never ran")
        if run.dropped_lines:
            warnings.append(f"the {name} run {run.run_id} has {run.dropped_lines} unreadable rows")
    if base.meta.get("case_files_hash") != new.meta.get("case_files_hash"):
        warnings.append("the runs used different case files (case_files_hash differs)")
    return warnings


def compare_runs(
    base: Run,
    new: Run,
    thresholds: Thresholds | None = None,
    accepted: Accepted | None = None,
    drift_limits: DriftLimits | None = None,
) -> Comparison:
    """Every difference from base to new, per variant present in both.

    Status and tolerance changes are judged against each case's own expectation, so they are compared whatever
    the machines; bitwise equality and speed only between rows whose environment keys are equal. Numerics
    drift (budget used, ulps) is measured for every pair; with drift_limits, growth beyond them regresses.
    """
    thresholds = thresholds or Thresholds()
    accepted = accepted or Accepted()
    comparison = Comparison(base_id=base.run_id, new_id=new.run_id, warnings=_run_warnings(base, new))
    out = _Collector(comparison, accepted)
    base_rows = {r.variant_id: r for r in base.results}
    new_rows = {r.variant_id: r for r in new.results}
    comparison.only_in_base = sorted(set(base_rows) - set(new_rows))
    comparison.only_in_new = sorted(set(new_rows) - set(base_rows))
    base_env = base.meta.get("environment") or {}
    new_env = new.meta.get("environment") or {}
    for vid, new_row in new_rows.items():
        base_row = base_rows.get(vid)
        if base_row is None:
            _new_failure(new_row, out)
            continue
        comparison.compared += 1
        base_key, new_key = environment_key(base_env, base_row), environment_key(new_env, new_row)
        shared = base_key.keys() & new_key.keys()  # keys one run did not record are no difference
        comparable = all(base_key[k] == new_key[k] for k in shared)
        if not comparable and not base_row.status == new_row.status == "skipped":
            # (a device absent in both runs, e.g. cuda on CPU-only CI, ran nothing there to compare: no note)
            differing = sorted(k for k in shared if base_key[k] != new_key[k])
            detail = "; ".join(f"{k}: {base_key[k]!r} -> {new_key.get(k)!r}" for k in differing)
            comparison.not_comparable.append(Change(vid, "environment", detail, base_row, new_row))
        _compare_numerics(base_row, new_row, comparable, out)
        if comparable and base_row.kind == "bench" and new_row.kind == "bench":
            _compare_perf(base_row, new_row, thresholds, out)
    _add_drift(comparison, base_rows, new_rows, drift_limits or DriftLimits(), out)
    comparison.unused_accepted = accepted.unused
    return comparison


def _add_drift(
    comparison: Comparison,
    base_rows: Mapping[str, Result],
    new_rows: Mapping[str, Result],
    limits: DriftLimits,
    out: _Collector,
) -> None:
    """The numerics drift of every variant in both runs, and its growth beyond the limits as regressions."""
    pairs = {vid: (base_rows[vid], new) for vid, new in new_rows.items() if vid in base_rows}
    comparison.drift = numerics_drift(pairs.values())
    for change in drift_regressions(comparison.drift, limits, pairs):
        out.regression(change)

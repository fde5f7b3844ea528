"""Diff two stored runs: numeric drift (status, tolerance, bitwise output) and real performance changes."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from cnnbench.errors import UsageError, first_line
from cnnbench.report.significance import P_THRESHOLD, is_different
from cnnbench.store.result import FAILING, Result
from cnnbench.store.run import Run

__all__ = [
    "CHANGE_KINDS",
    "Allowlist",
    "Change",
    "Comparison",
    "Thresholds",
    "compare_runs",
    "environment_key",
    "load_allowlist",
    "parse_group_threshold",
    "print_comparison",
    "render_comparison_markdown",
]

#: What a change can be about: a status, elements outside tolerance, the output's bits, or the speed.
CHANGE_KINDS = ("status", "tolerance", "bitwise", "perf")
#: Default fractional threshold on the ratio of medians (asv's default factor is 1.1 as well).
DEFAULT_THRESHOLD = 0.1
#: Differences in median below this are timer resolution and scheduling noise, whatever the ratio says.
DEFAULT_NOISE_FLOOR_MS = 0.01
#: Variants listed per section before the rest is counted.
_MAX_LISTED = 50
#: Environment keys that make numerics or speed on the CPU differ between machines (torch's own version is
#: what a comparison across versions is about, so it is not among them).
_CPU_KEYS = ("cpu_model", "cpu_capability", "num_threads", "mkldnn_enabled", "torch_debug")
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
            if any(_glob(pattern).fullmatch(name) for name in names):
                return fraction
        return self.default


def _glob(pattern: str) -> re.Pattern[str]:
    """Shell-style * and ? only: variant ids contain brackets, which fnmatch would read as a character class."""
    return re.compile(
        ".*".join(".".join(re.escape(p) for p in part.split("?")) for part in pattern.split("*"))
    )


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


@dataclass(frozen=True)
class AllowEntry:
    """One accepted difference: a variant id (or * pattern), why, and which kinds of change it covers."""

    pattern: str
    reason: str
    kinds: tuple[str, ...] = CHANGE_KINDS


@dataclass
class Allowlist:
    """Known, explained differences between runs; a regression they match is reported as allowed."""

    entries: list[AllowEntry] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def match(self, variant_id: str, kind: str) -> AllowEntry | None:
        """The first entry covering this variant and kind of change (marked used)."""
        for entry in self.entries:
            if kind in entry.kinds and _glob(entry.pattern).fullmatch(variant_id):
                self.used.add(entry.pattern)
                return entry
        return None

    @property
    def unused(self) -> list[AllowEntry]:
        """Entries that matched nothing: stale, and worth deleting."""
        return [e for e in self.entries if e.pattern not in self.used]


def load_allowlist(path: str | Path) -> Allowlist:
    """Read an allowlist file: ``allow:`` maps a variant id (or * pattern) to a reason, or to
    ``{reason: ..., changes: [bitwise, ...]}`` to accept only those kinds of change."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--allowlist {p}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--allowlist {p}: invalid YAML ({exc})") from None
    if data is None:
        return Allowlist()
    if not isinstance(data, dict) or set(data) - {"allow"}:
        raise UsageError(f"--allowlist {p}: expected a mapping with one key, allow:")
    allow = data.get("allow") or {}
    if not isinstance(allow, dict):
        raise UsageError(f"--allowlist {p}: allow: must map variant ids to reasons")
    entries = []
    for pattern, value in allow.items():
        kinds: Sequence[str] = CHANGE_KINDS
        if isinstance(value, dict):
            reason = value.get("reason")
            kinds = value.get("changes", CHANGE_KINDS)
            extra = set(value) - {"reason", "changes"}
            bad = [k for k in kinds if k not in CHANGE_KINDS] if isinstance(kinds, list) else [kinds]
            if extra or bad:
                raise UsageError(
                    f"--allowlist {p}: {pattern}: keys are reason and changes (a list of "
                    f"{', '.join(CHANGE_KINDS)})"
                )
        else:
            reason = value
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError(f"--allowlist {p}: {pattern}: every entry needs a reason")
        entries.append(AllowEntry(str(pattern), reason.strip(), tuple(kinds)))
    return Allowlist(entries)


@dataclass(frozen=True)
class Change:
    """One difference between the base and the new row of a variant."""

    variant_id: str
    kind: str
    """One of CHANGE_KINDS."""
    detail: str
    base: Result | None = None
    new: Result | None = None
    ratio: float | None = None
    """new / base median time, for perf changes."""
    p_value: float | None = None
    allowed: str = ""
    """The allowlist's reason, when the change is an accepted one."""


@dataclass
class Comparison:
    """Every difference between two runs, sorted into what fails a gate and what does not."""

    base_id: str
    new_id: str
    regressions: list[Change] = field(default_factory=list)
    improvements: list[Change] = field(default_factory=list)
    allowed: list[Change] = field(default_factory=list)
    not_comparable: list[Change] = field(default_factory=list)
    """Rows whose environment keys differ: the bitwise and perf comparisons were not made."""
    status_changes: list[Change] = field(default_factory=list)
    """Status changes that are neither a regression nor a fix (e.g. passed -> skipped)."""
    only_in_base: list[str] = field(default_factory=list)
    only_in_new: list[str] = field(default_factory=list)
    compared: int = 0
    warnings: list[str] = field(default_factory=list)
    unused_allowlist: list[AllowEntry] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        """True when anything got worse and is not allowlisted: the gate fails."""
        return bool(self.regressions)


def environment_key(env: Mapping[str, Any], result: Result) -> dict[str, Any]:
    """The environment values this row's numerics and speed depend on (its device's kind decides which)."""
    kind, _, index = result.device.partition(":")
    if kind == "cpu":
        key = {k: env.get(k) for k in _CPU_KEYS}
        key["num_threads"] = result.metrics.get("num_threads", env.get("num_threads"))
        return key
    key = {k: env.get(k) for k in _ACCEL_KEYS}
    accelerators = env.get("accelerators") or []
    wanted = f"{kind}:{index or 0}"
    key["device_name"] = next((a.get("name") for a in accelerators if a.get("device") == wanted), None)
    return key


def _err(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


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
    def __init__(self, comparison: Comparison, allowlist: Allowlist) -> None:
        self.comparison = comparison
        self.allowlist = allowlist

    def regression(self, change: Change) -> None:
        entry = self.allowlist.match(change.variant_id, change.kind)
        if entry is None:
            self.comparison.regressions.append(change)
        else:
            self.comparison.allowed.append(_with_reason(change, entry.reason))


def _with_reason(change: Change, reason: str) -> Change:
    return dataclasses.replace(change, allowed=reason)


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
            f"{_err(base.max_abs_err)} -> {_err(new.max_abs_err)}; atol {_err(new.atol)}, rtol {_err(new.rtol)})"
        )
        out.regression(Change(vid, "tolerance", detail, base, new))
        return
    if base_bad > 0 and new_bad == 0 and new.max_abs_err is not None and base.status == new.status:
        detail = f"back within tolerance (max abs err {_err(base.max_abs_err)} -> {_err(new.max_abs_err)})"
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
            f"expected {_err(base.max_abs_err)} -> {_err(new.max_abs_err)})"
        )
        out.regression(Change(vid, "bitwise", detail, base, new))


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


def compare_runs(
    base: Run,
    new: Run,
    thresholds: Thresholds | None = None,
    allowlist: Allowlist | None = None,
) -> Comparison:
    """Every difference from base to new, per variant present in both.

    Status and tolerance changes are judged against each case's own expectation, so they are compared whatever
    the machines; bitwise equality and speed only between rows whose environment keys are equal.
    """
    thresholds = thresholds or Thresholds()
    allowlist = allowlist or Allowlist()
    comparison = Comparison(base_id=base.run_id, new_id=new.run_id)
    out = _Collector(comparison, allowlist)
    for run, name in ((base, "base"), (new, "new")):
        if not run.complete:
            comparison.warnings.append(f"the {name} run {run.run_id} is incomplete: some variants never ran")
        if run.dropped_lines:
            comparison.warnings.append(f"the {name} run {run.run_id} has {run.dropped_lines} unreadable rows")
    if base.meta.get("case_files_hash") != new.meta.get("case_files_hash"):
        comparison.warnings.append("the runs used different case files (case_files_hash differs)")
    base_rows = {r.variant_id: r for r in base.results}
    new_rows = {r.variant_id: r for r in new.results}
    comparison.only_in_base = sorted(set(base_rows) - set(new_rows))
    comparison.only_in_new = sorted(set(new_rows) - set(base_rows))
    base_env = base.meta.get("environment") or {}
    new_env = new.meta.get("environment") or {}
    for vid, new_row in new_rows.items():
        base_row = base_rows.get(vid)
        if base_row is None:
            continue
        comparison.compared += 1
        base_key, new_key = environment_key(base_env, base_row), environment_key(new_env, new_row)
        comparable = base_key == new_key
        if not comparable:
            differing = sorted(k for k in base_key if base_key[k] != new_key.get(k))
            detail = "; ".join(f"{k}: {base_key[k]!r} -> {new_key.get(k)!r}" for k in differing)
            comparison.not_comparable.append(Change(vid, "environment", detail, base_row, new_row))
        _compare_numerics(base_row, new_row, comparable, out)
        if comparable and base_row.kind == "bench" and new_row.kind == "bench":
            _compare_perf(base_row, new_row, thresholds, out)
    comparison.unused_allowlist = allowlist.unused
    return comparison


def _grouped(changes: Iterable[Change]) -> dict[str, list[Change]]:
    out: dict[str, list[Change]] = {}
    for change in changes:
        out.setdefault(change.detail, []).append(change)
    return out


def _summary(c: Comparison) -> str:
    parts = [
        f"{len(c.regressions)} regressions",
        f"{len(c.improvements)} improvements",
        f"{len(c.allowed)} allowed differences",
        f"{len(c.not_comparable)} not comparable",
        f"{c.compared} variants compared",
    ]
    return ", ".join(parts)


def render_comparison_markdown(c: Comparison) -> str:
    """The comparison as markdown (fits a GitHub job summary)."""
    verdict = "❌ regressions found" if c.regressed else "✅ no regressions"
    lines = [f"# cnnbench compare `{c.base_id}` → `{c.new_id}`: {verdict}", "", f"**{_summary(c)}**", ""]
    lines += [f"> ⚠️ {w}" for w in c.warnings]
    if c.warnings:
        lines.append("")

    def table(title: str, changes: list[Change], with_reason: bool = False) -> None:
        if not changes:
            return
        lines.extend([f"## {title} ({len(changes)})", ""])
        header = "| variant | change | detail |" + (" reason |" if with_reason else "")
        lines.extend([header, "|---|---|---|" + ("---|" if with_reason else "")])
        for ch in changes[:_MAX_LISTED]:
            row = f"| `{ch.variant_id}` | {ch.kind} | {_md(ch.detail)} |"
            lines.append(row + (f" {_md(ch.allowed)} |" if with_reason else ""))
        if len(changes) > _MAX_LISTED:
            lines.append(f"\n... and {len(changes) - _MAX_LISTED} more")
        lines.append("")

    table("Regressions", c.regressions)
    table("Improvements", c.improvements)
    table("Allowed differences", c.allowed, with_reason=True)
    table("Other status changes", c.status_changes)
    if c.not_comparable:
        lines.extend([f"## Not comparable ({len(c.not_comparable)})", ""])
        lines.append("Environment keys differ, so bitwise and performance comparisons were skipped:")
        lines.append("")
        for detail, changes in _grouped(c.not_comparable).items():
            lines.append(f"- {len(changes)} rows: {_md(detail)}")
        lines.append("")
    for title, ids in (("Only in the base run", c.only_in_base), ("Only in the new run", c.only_in_new)):
        if ids:
            shown = ", ".join(f"`{i}`" for i in ids[:_MAX_LISTED])
            more = f" ... and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else ""
            lines.extend([f"## {title} ({len(ids)})", "", shown + more, ""])
    if c.unused_allowlist:
        lines.extend(["## Unused allowlist entries", ""])
        lines.extend(f"- `{e.pattern}`: {_md(e.reason)}" for e in c.unused_allowlist)
        lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def print_comparison(c: Comparison, console: Console) -> None:
    """The comparison in the terminal: regressions first, then the rest, then the verdict line."""
    for w in c.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")

    def section(title: str, style: str, changes: list[Change]) -> None:
        if not changes:
            return
        console.print(f"[bold {style}]{title} ({len(changes)})[/]")
        for ch in changes[:_MAX_LISTED]:
            reason = f"  [dim]allowed: {escape(ch.allowed)}[/]" if ch.allowed else ""
            console.print(
                f"  {escape(ch.variant_id)} [dim]{ch.kind}[/] {escape(ch.detail)}{reason}", soft_wrap=True
            )
        if len(changes) > _MAX_LISTED:
            console.print(f"  ... and {len(changes) - _MAX_LISTED} more")

    section("Regressions", "red", c.regressions)
    section("Improvements", "green", c.improvements)
    section("Allowed differences", "yellow", c.allowed)
    section("Other status changes", "cyan", c.status_changes)
    if c.not_comparable:
        console.print(f"[bold]Not comparable ({len(c.not_comparable)})[/]")
        for detail, changes in _grouped(c.not_comparable).items():
            console.print(f"  {len(changes)} rows: {escape(detail)}")
    for title, ids in (("only in base", c.only_in_base), ("only in new", c.only_in_new)):
        if ids:
            console.print(f"[dim]{len(ids)} variants {title}[/]")
    for e in c.unused_allowlist:
        console.print(f"[dim]unused allowlist entry {escape(e.pattern)}[/]")
    colour = "red" if c.regressed else "green"
    console.print(f"[bold {colour}]{_summary(c)}[/]", highlight=False, soft_wrap=True)

"""The tables every report shares: a run as a pandas frame, the status matrix, the benchmark table, the lines
summarising the machine, and which rows are failures (the terminal and the files render these same tables)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from cnnbench.casefile.variants import rerun_command
from cnnbench.store.result import FAILING, STATUSES, Result, columns

__all__ = [
    "BENCH_COLUMNS",
    "MAX_LISTED",
    "STATUS_ICONS",
    "absent_devices",
    "bench_display",
    "bench_table",
    "dtype_order",
    "environment_line",
    "failures",
    "frame",
    "peaks_line",
    "repro_command",
    "status_legend",
    "status_matrix",
    "warning_groups",
]

#: The icon each status is shown with.
STATUS_ICONS = {
    "passed": "✅",
    "failed": "❌",
    "error": "💥",
    "skipped": "⏭️",
    "xfail": "❎",
    "xpass": "⚠️",
    "mistrusted": "❔",
}
#: Rows a report lists in full per section before it counts the rest: a summary of thousands of failures must
#: still fit a CI job summary (GitHub cuts those at 1 MiB).
MAX_LISTED = 50
#: Floating dtypes from the most to the least precise, the order tables show them in; others follow by name.
_DTYPE_ORDER = ("float64", "float32", "float16", "bfloat16")
#: Statuses from the worst to the best: the one a status-matrix cell shows its icon for.
_SEVERITY = ("failed", "error", "xpass", "mistrusted", "passed", "xfail", "skipped")


def frame(results: list[Result]) -> pd.DataFrame:
    """Every row and every stored column, in schema order (an empty run still has the columns)."""
    return pd.DataFrame([r.to_json() for r in results], columns=columns())


def repro_command(result: Result) -> str:
    """A command that runs exactly this row's variant again."""
    return rerun_command(result.file, result.variant_id)


def failures(results: list[Result]) -> list[Result]:
    """The rows a report lists one by one: failed, errored, and passed against an expected failure."""
    return [r for r in results if r.status in FAILING or r.status == "xpass"]


def warning_groups(results: list[Result]) -> list[tuple[str, list[str]]]:
    """Each distinct warning the run's variants raised, with the ids of the variants that raised it, the warning
    raised by the most variants first."""
    groups: dict[str, list[str]] = {}
    for r in results:
        for text in r.warnings:
            groups.setdefault(text, []).append(r.variant_id)
    return sorted(groups.items(), key=lambda item: -len(item[1]))


def dtype_order(dtypes: Iterable[str]) -> list[str]:
    """The dtypes present, floating ones from the most precise down, then the others by name."""
    present = set(dtypes)
    order = [d for d in _DTYPE_ORDER if d in present]
    return order + sorted(present - set(order))


def status_matrix(results: list[Result]) -> pd.DataFrame:
    """(target, device) x dtype: a cell per group, "✅ 3/3" when every variant that ran passed, else each status's
    mark, count and name, the worst first ("❌ 1 failed ✅ 2", "✅ 2 ❎ 1 xfail"); "skipped" when none ran."""
    checks = [r for r in results if r.kind == "check"]
    if not checks:
        return pd.DataFrame()
    # Only the four columns grouped on: a frame of every column would copy each row's nested values too
    # (memory in proportion to a million rows' examples and metrics, for a table of a few cells).
    df = pd.DataFrame(
        {
            "target": [r.target for r in checks],
            "device": [r.device for r in checks],
            "dtype": [r.dtype for r in checks],
            "status": [r.status for r in checks],
        }
    )
    rank = {s: i for i, s in enumerate(_SEVERITY)}

    def cell(statuses: pd.Series) -> str:
        ran = statuses[statuses != "skipped"]
        if ran.empty:
            return "skipped"
        counts = ran.value_counts()
        if set(counts.index) == {"passed"}:
            return f"{STATUS_ICONS['passed']} {len(ran)}/{len(ran)}"
        # Anything but passed has its own mark and name, worst first: "❌ 1 failed ✅ 2", "✅ 2 ❎ 1 xfail".
        order = sorted(counts.index, key=lambda s: rank.get(s, 99))
        return " ".join(
            f"{STATUS_ICONS.get(s, '')} {counts[s]}" + ("" if s == "passed" else f" {s}") for s in order
        )

    table = df.pivot_table(index=["target", "device"], columns="dtype", values="status", aggfunc=cell)
    return table.reindex(columns=dtype_order(df["dtype"])).fillna("")


#: What each mark of the status matrix means (status_legend lists those a matrix shows).
_MEANINGS = {
    "passed": "passed",
    "failed": "failed",
    "error": "error",
    "xpass": "xpass (passed, expected to fail)",
    "mistrusted": "mistrusted (the check itself is in doubt)",
    "xfail": "xfail (failed, as expected)",
}


def status_legend(results: list[Result]) -> str:
    """The marks the status matrix of results shows and what each means, in one line ("" when every check that
    ran passed)."""
    present = {r.status for r in results if r.kind == "check" and r.status != "skipped"}
    if present <= {"passed"}:
        return ""  # "✅ 3/3" needs no legend
    shown = [f"{STATUS_ICONS[s]} {_MEANINGS[s]}" for s in STATUSES if s in present and s in _MEANINGS]
    return ("legend: " + " · ".join(shown)) if shown else ""


def absent_devices(results: list[Result]) -> dict[str, int]:
    """The devices this machine lacks (every row on them skipped as "not available"), with their row counts."""
    counts: dict[str, int] = {}
    present: set[str] = set()
    for r in results:
        if r.status == "skipped" and r.reason == f"device {r.device} is not available":
            counts[r.device] = counts.get(r.device, 0) + 1
        else:
            present.add(r.device)
    return {d: n for d, n in counts.items() if d not in present}


#: The benchmark table's columns: metrics (as bench rows store them) after the row's identity.
BENCH_COLUMNS = (
    "samples_per_s",
    "median_ms",
    "iqr_ms",
    "gflops",
    "gbs",
    "bound",
    "pct_of_bound",
    "ceiling_raised",
    "noisy",
    "flop_fwd",
    "n",
    "slow_path",
)


def bench_table(results: list[Result]) -> pd.DataFrame:
    """One line per benchmark row: target, device, dtype and its metrics (missing ones empty)."""
    rows = [
        {
            "variant_id": r.variant_id,
            "target": r.target,
            "device": r.device,
            "dtype": r.dtype,
            "status": r.status,
            **{k: r.metrics.get(k) for k in BENCH_COLUMNS},
        }
        for r in results
        if r.kind == "bench"
    ]
    return pd.DataFrame(rows, columns=["variant_id", "target", "device", "dtype", "status", *BENCH_COLUMNS])


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return ""
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"


def _bound(bound: Any, raised: Any) -> str:
    """Which roof a row is under ("compute", "memory"), marked when the row itself raised that ceiling."""
    if not isinstance(bound, str):
        return ""
    kind = "compute" if bound == "compute" else "memory"
    return f"{bound} (raised)" if isinstance(raised, list) and kind in raised else bound


def bench_display(results: list[Result]) -> pd.DataFrame:
    """The benchmark table as people read it: units in the headers, a few significant digits, a noise flag.

    Skipped rows have nothing to show (the report lists them with their reasons).
    """
    df = bench_table([r for r in results if r.status != "skipped"])
    return pd.DataFrame(
        {
            "variant": df["variant_id"],
            "samples/s": df["samples_per_s"].map(_number),
            "median ms": df["median_ms"].map(_number),
            "IQR ms": df["iqr_ms"].map(lambda v: _number(v, 2)),
            "GFLOP/s": df["gflops"].map(_number),
            "GB/s": df["gbs"].map(lambda v: _number(v, 3)),
            "bound": [_bound(b, r) for b, r in zip(df["bound"], df["ceiling_raised"], strict=True)],
            "% of bound": df["pct_of_bound"].map(lambda v: _number(v, 3)),
            "noise": df["noisy"].map(lambda v: "⚠️ noisy" if v else ""),
            "fwd GFLOP/sample": df["flop_fwd"].map(lambda v: _number(v / 1e9, 3) if _number(v) else ""),
            "n": df["n"].map(_number),
            "path": df["slow_path"].map(lambda v: "🐢 slow path" if v else ""),
        }
    )


def _ceiling_text(key: str, entry: dict[str, Any]) -> str:
    kind, device, *rest = key.split("|")
    dtype = rest[0] if kind == "compute" and rest else ""
    name = f"{device} {dtype or 'bandwidth'}"
    unit = str(entry.get("unit") or ("GFLOP/s" if kind == "compute" else "GB/s"))
    value = entry.get("ceiling")
    if not isinstance(value, int | float):
        return f"{name}: missing ({entry.get('error') or 'not measured'})"
    text = f"{name} {_number(value, 3)} {unit}"
    measured = entry.get("measured")
    if entry.get("raised_by") and isinstance(measured, int | float) and value > measured:
        text += f" (practical: raised from {_number(measured, 3)} by {entry['raised_by']})"
    theoretical = entry.get("theoretical")
    if kind == "compute":
        text += f", theoretical {_number(theoretical, 3)}" if isinstance(theoretical, int | float) else ""
    return text


def peaks_line(meta: dict[str, Any]) -> str:
    """The machine's ceilings the run's rows were compared with, one clause each ("" without any); a run from
    before the ceilings shows its GEMM probe peaks."""
    ceilings = meta.get("ceilings")
    if isinstance(ceilings, dict) and isinstance(ceilings.get("entries"), dict) and ceilings["entries"]:
        parts = [_ceiling_text(k, v) for k, v in sorted(ceilings["entries"].items()) if isinstance(v, dict)]
        note = "🐢 slow path: a dtype's compute ceiling over 4x below float32's there"
        where = f" (measured once per machine: {ceilings.get('file')})" if ceilings.get("file") else ""
        return f"Ceilings{where}: " + "; ".join(parts) + f". {note}."
    peaks = meta.get("peaks")
    if not isinstance(peaks, dict) or not peaks:
        return ""
    parts = []
    for device, by_dtype in sorted(peaks.items()):
        if isinstance(by_dtype, dict):
            shown = ", ".join(f"{dtype} {_number(value, 3)}" for dtype, value in sorted(by_dtype.items()))
            parts.append(f"{device}: {shown}")
    note = "🐢 slow path: a dtype over 4x below float32 there"
    return "GEMM probe peaks (GFLOP/s): " + "; ".join(parts) + f". {note}."


def environment_line(meta: dict[str, Any]) -> str:
    """The machine a run ran on in one line: torch, Python, CPU, threads, devices (and CUDA when present)."""
    env = meta.get("environment") or {}
    parts = [
        f"torch {env.get('torch_version', '?')}",
        f"Python {env.get('python_version', '?')}",
        str(env.get("cpu_model", "?")),
        f"{env.get('num_threads', '?')} threads",
        "devices: " + ", ".join(env.get("devices") or ["?"]),
    ]
    if env.get("cuda_version"):
        parts.append(f"CUDA {env['cuda_version']}")
    parts.extend(_precision_parts(env))
    return " · ".join(parts)


def _precision_parts(env: dict[str, Any]) -> list[str]:
    """The float32 conv/matmul compute precision per device type the run had (cnnbench.device's flags)."""
    out = []
    for kind in ("cpu", *(d for d in env.get("devices") or [] if d == "cuda")):
        conv, matmul = env.get(f"conv_compute_precision_{kind}"), env.get(f"matmul_compute_precision_{kind}")
        if conv or matmul:
            out.append(f"float32 on {kind}: conv {conv or '?'}, matmul {matmul or '?'}")
    return out


assert set(STATUSES) == set(STATUS_ICONS)

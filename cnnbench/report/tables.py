"""Render a stored run: the terminal (rich), markdown, HTML, JUnit XML, JSON and CSV."""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cnnbench.store.result import FAILING, STATUSES, Result, columns, count_statuses, summary_line
from cnnbench.store.run import Run

__all__ = [
    "BENCH_COLUMNS",
    "RENDERERS",
    "STATUS_ICONS",
    "bench_table",
    "frame",
    "print_console",
    "render_csv",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "repro_command",
    "status_matrix",
]

_ICONS = {
    "passed": "✅",
    "failed": "❌",
    "error": "💥",
    "skipped": "⏭️",
    "xfail": "☑️",
    "xpass": "⚠️",
    "mistrusted": "❔",
}
#: Failures listed in full in a report; the rest are counted.
_MAX_FAILURES_SHOWN = 50


def frame(results: list[Result]) -> pd.DataFrame:
    """Every row and every stored column, in schema order (an empty run still has the columns)."""
    return pd.DataFrame([r.to_json() for r in results], columns=columns())


def repro_command(result: Result) -> str:
    """A command that runs exactly this variant again."""
    return f"cnnbench run {shlex.quote(result.file)} -k {shlex.quote(result.variant_id)}"


def status_matrix(results: list[Result]) -> pd.DataFrame:
    """(target, device) x dtype: a cell per group like "3/3" passed, with an icon for the worst status."""
    checks = [r for r in results if r.kind == "check"]
    if not checks:
        return pd.DataFrame()
    df = frame(checks)
    rank = {
        s: i for i, s in enumerate(("failed", "error", "xpass", "mistrusted", "passed", "xfail", "skipped"))
    }

    def cell(statuses: pd.Series) -> str:
        ran = statuses[statuses != "skipped"]
        if ran.empty:
            return "skipped"
        worst = min(ran, key=lambda s: rank.get(s, 99))
        ok = int(ran.isin(["passed", "xfail"]).sum())
        return f"{_ICONS.get(worst, '')} {ok}/{len(ran)}"

    order = [d for d in ("float64", "float32", "float16", "bfloat16") if d in set(df["dtype"])]
    order += sorted(set(df["dtype"]) - set(order))
    table = df.pivot_table(index=["target", "device"], columns="dtype", values="status", aggfunc=cell)
    return table.reindex(columns=order).fillna("")


#: The benchmark table's columns: metrics (as bench rows store them) after the row's identity.
BENCH_COLUMNS = (
    "samples_per_s",
    "median_ms",
    "iqr_ms",
    "gflops",
    "pct_of_peak",
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
            "% of peak": df["pct_of_peak"].map(lambda v: _number(v, 3)),
            "noise": df["noisy"].map(lambda v: "⚠️ noisy" if v else ""),
            "fwd GFLOP/sample": df["flop_fwd"].map(lambda v: _number(v / 1e9, 3) if _number(v) else ""),
            "n": df["n"].map(_number),
            "path": df["slow_path"].map(lambda v: "🐢 slow path" if v else ""),
        }
    )


def _peaks_line(meta: dict[str, Any]) -> str:
    """The machine's GEMM peaks the run probed: "cpu float32 18.0, bfloat16 0.38 GFLOP/s"."""
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


def _failures(results: list[Result]) -> list[Result]:
    return [r for r in results if r.status in FAILING or r.status == "xpass"]


def _env_line(meta: dict[str, Any]) -> str:
    env = meta.get("environment", {})
    parts = [
        f"torch {env.get('torch_version', '?')}",
        f"Python {env.get('python_version', '?')}",
        str(env.get("cpu_model", "?")),
        f"{env.get('num_threads', '?')} threads",
        "devices: " + ", ".join(env.get("devices", []) or ["?"]),
    ]
    if env.get("cuda_version"):
        parts.append(f"CUDA {env['cuda_version']}")
    return " · ".join(parts)


def render_markdown(run: Run) -> str:
    """A report that fits a GitHub job summary: totals, the status matrix, each failure with a repro."""
    results = run.results
    counts = count_statuses(results)
    state = "" if run.complete else " (incomplete: the run stopped before every variant ran)"
    lines = [
        f"# cnnbench run `{run.run_id}`{state}",
        "",
        f"**{summary_line(counts)}** in {len(results)} variants · {_env_line(run.meta)}",
        "",
    ]
    if run.dropped_lines:
        lines += [f"> {run.dropped_lines} stored row(s) were cut short and could not be read.", ""]
    matrix = status_matrix(results)
    if not matrix.empty:
        lines += ["## Status by target, device and dtype", "", _markdown_table(matrix.reset_index()), ""]
    bench = bench_display(results)
    if not bench.empty:
        lines += ["## Benchmarks", "", _markdown_table(bench), ""]
        if _peaks_line(run.meta):
            lines += [_peaks_line(run.meta), ""]
    failures = _failures(results)
    if failures:
        lines += ["## Failures", ""]
        for r in failures[:_MAX_FAILURES_SHOWN]:
            lines += [
                f"### {_ICONS.get(r.status, '')} `{r.variant_id}` — {r.status}",
                "",
                f"{r.file}:{r.line}" + (f" · {r.source}" if r.source else ""),
                "",
                "```",
                r.message.strip() or "(no message)",
                "```",
                "",
                f"Repro: `{repro_command(r)}`"
                + (
                    f" · as a plain torch script: `cnnbench repro {shlex.quote(r.variant_id)}`"
                    if r.kind == "check"
                    else ""
                ),
                "",
            ]
        if len(failures) > _MAX_FAILURES_SHOWN:
            lines += [f"... and {len(failures) - _MAX_FAILURES_SHOWN} more failures.", ""]
    notes = [r for r in results if r.status in ("skipped", "xfail") and r.reason]
    if notes:
        grouped: dict[tuple[str, str], list[str]] = {}
        for r in notes:
            grouped.setdefault((r.status, r.reason), []).append(r.variant_id)
        lines += ["## Skipped and expected failures", "", "| status | variants | reason |", "|---|---:|---|"]
        for (status, reason), ids in sorted(grouped.items()):
            lines.append(f"| {status} | {len(ids)} | {_cell(reason)} |")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_table(df: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(_cell(str(v)) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def render_json(run: Run) -> str:
    """The run's metadata and every row with the stored columns."""
    rows = json.loads(frame(run.results).to_json(orient="records"))
    # "complete" is repeated at the top so a consumer cannot miss a run that stopped early.
    return json.dumps({"complete": run.complete, "meta": run.meta, "results": rows}, indent=2, default=str)


def render_csv(run: Run) -> str:
    """Every row, stored columns in order; nested values (examples, metrics) as JSON strings."""
    df = frame(run.results)
    for col in ("examples", "metrics"):
        df[col] = df[col].map(lambda v: json.dumps(v, default=str))
    return str(df.to_csv(index=False))


def print_console(run: Run, console: Console, *, verbose: bool = False) -> None:
    """The terminal summary: a table per target, every failure with its message and repro, the totals line."""
    results = run.results
    matrix = status_matrix(results)
    if not matrix.empty:
        table = Table(title=f"cnnbench run {run.run_id}", show_lines=False)
        table.add_column("target", style="bold")
        table.add_column("device")
        for col in matrix.columns:
            table.add_column(str(col), justify="center")
        for key, row in matrix.iterrows():
            names = [escape(str(k)) for k in key]  # type: ignore[union-attr, attr-defined]
            table.add_row(*names, *(escape(str(v)) for v in row))
        console.print(table)
    bench = bench_display(results)
    if not bench.empty:
        # A terminal is narrow: the main columns, the flags in one; the reports have every column.
        timed = Table(title="benchmarks", show_lines=False)
        timed.add_column("variant", overflow="fold")
        shown = ("median ms", "IQR ms", "GFLOP/s", "% of peak")
        for col in shown:
            timed.add_column(col, justify="right", no_wrap=True)
        timed.add_column("flags", no_wrap=True)
        for _, row in bench.iterrows():
            flags = " ".join(label for c, label in (("noise", "noisy"), ("path", "slow path")) if row[c])
            timed.add_row(escape(str(row["variant"])), *(escape(str(row[c])) for c in shown), flags)
        console.print(timed)
        if _peaks_line(run.meta):
            console.print(_peaks_line(run.meta), style="dim", highlight=False)
    for r in _failures(results):
        console.print(
            f"[bold red]{r.status.upper()}[/] {escape(r.variant_id)}  [dim]{escape(r.file)}:{r.line}[/]"
        )
        console.print(r.message.strip() or "(no message)", markup=False, highlight=False)
        console.print(f"[dim]repro:[/] {escape(repro_command(r))}", highlight=False)
    if verbose:
        for r in results:
            if r.status in ("skipped", "xfail"):
                console.print(
                    f"[dim]{r.status}[/] {escape(r.variant_id)}: {escape(r.reason)}", highlight=False
                )
            elif r.status == "mistrusted":
                console.print(
                    f"[dim]mistrusted[/] {escape(r.variant_id)}: {escape(r.message)}", highlight=False
                )
    counts = count_statuses(results)
    colour = "red" if any(counts.get(s) for s in FAILING) else "green"
    state = "" if run.complete else " (incomplete)"
    console.print(f"[bold {colour}]{summary_line(counts)}[/]{state}", highlight=False)


def render_html(run: Run) -> str:
    """One self-contained HTML page with plots (needs matplotlib: the html extra)."""
    from cnnbench.report.html import render_html as render

    return render(run)


def render_junit(run: Run) -> str:
    """JUnit XML: a testsuite per case file, a testcase per variant."""
    from cnnbench.report.junit import render_junit as render

    return render(run)


#: The icon each status is shown with.
STATUS_ICONS = _ICONS

RENDERERS: dict[str, Callable[[Run], str]] = {
    "markdown": render_markdown,
    "html": render_html,
    "junit": render_junit,
    "json": render_json,
    "csv": render_csv,
}

assert set(STATUSES) == set(_ICONS)

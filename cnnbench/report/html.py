"""The HTML report: one self-contained page (inline CSS, plots as base64 PNG) made with matplotlib's Agg."""

from __future__ import annotations

import base64
import html
import io
import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from cnnbench.casefile.variants import repro_script_command
from cnnbench.errors import UsageError
from cnnbench.report.tables import (
    STATUS_ICONS,
    bench_display,
    bench_table,
    dtype_order,
    environment_line,
    failures,
    repro_command,
    status_legend,
    status_matrix,
    warning_groups,
)
from cnnbench.store.result import FAILING, STATUSES, Result, count_statuses, summary_line
from cnnbench.store.run import Run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["error_heatmap", "render_html", "status_plot", "throughput_plot"]

#: Errors below this are drawn as this (log scale); an exact 0 is labelled "0".
_ERR_FLOOR = 1e-18
#: Resolution of the embedded plots: sharp on a laptop screen, a few tens of KiB each.
_DPI = 110
_STATUS_COLOURS = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "error": "#6a1b1b",
    "skipped": "#9e9e9e",
    "xfail": "#64b5f6",
    "xpass": "#ef6c00",
    "mistrusted": "#8e24aa",
}
_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1150px; padding: 0 1em; color: #1b1b1b; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.summary { font-size: 1.15em; font-weight: 600; }
.env { color: #555; }
.bad { color: #c62828; } .good { color: #2e7d32; }
table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; font-size: 12px; }
code { font-size: 12px; }
"""


def _figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError(
            "--format html needs matplotlib for its plots: pip install 'cnnbench[html]' (or matplotlib)"
        ) from None
    # A bare Figure draws with the Agg canvas and touches no global pyplot state or GUI backend.
    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def status_plot(results: list[Result]) -> Figure:
    """A bar per status: how many variants ended that way."""
    counts = count_statuses(results)
    statuses = [s for s in STATUSES if counts.get(s)] or ["passed"]
    fig = _figure(7, 0.45 * len(statuses) + 1.0)
    ax = fig.add_subplot()
    values = [counts.get(s, 0) for s in statuses]
    bars = ax.barh(statuses, values, color=[_STATUS_COLOURS[s] for s in statuses])
    ax.bar_label(bars, padding=3)
    ax.invert_yaxis()
    ax.set_xlabel("variants")
    ax.set_title("Status counts")
    ax.margins(x=0.12)
    return fig


def _error_grid(results: list[Result]) -> pd.DataFrame:
    rows = [
        {"target": r.target, "dtype": r.dtype, "err": r.max_abs_err}
        for r in results
        if r.kind == "check" and r.max_abs_err is not None and math.isfinite(r.max_abs_err)
    ]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    grid = df.pivot_table(index="target", columns="dtype", values="err", aggfunc="max")
    return grid.reindex(columns=dtype_order(grid.columns))


def error_heatmap(results: list[Result]) -> Figure | None:
    """Max absolute error per op and dtype (log colour scale, each cell labelled), or None without errors."""
    grid = _error_grid(results)
    if grid.empty:
        return None
    values = grid.to_numpy(dtype=float)
    logs = [
        [math.log10(max(v, _ERR_FLOOR)) if not math.isnan(v) else math.nan for v in row] for row in values
    ]
    fig = _figure(1.6 + 1.25 * len(grid.columns), 1.2 + 0.32 * len(grid.index))
    ax = fig.add_subplot()
    image = ax.imshow(logs, aspect="auto", cmap="viridis", vmin=math.log10(_ERR_FLOOR), vmax=0)
    ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns])
    ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index])
    ax.xaxis.tick_top()
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if not math.isnan(v):
                label = "0" if v == 0 else f"{v:.1e}"
                colour = "white" if logs[i][j] < -9 else "black"
                ax.text(j, i, label, ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, label="log10 max abs error")
    ax.set_title("Max absolute error per op and dtype")
    return fig


def throughput_plot(results: list[Result]) -> Figure | None:
    """Samples/s per model (target and device) and dtype, the best over each group's configurations."""
    df = bench_table(results)
    df = df[pd.to_numeric(df["samples_per_s"], errors="coerce") > 0]
    if df.empty:
        return None
    df = df.assign(samples_per_s=df["samples_per_s"].astype(float))
    several_devices = df["device"].nunique() > 1
    df = df.assign(model=df["target"] + (" (" + df["device"] + ")" if several_devices else ""))
    grid = df.pivot_table(index="model", columns="dtype", values="samples_per_s", aggfunc="max")
    fig = _figure(8, 1.4 + 0.3 * len(grid.index) * max(1, len(grid.columns)) ** 0.6)
    ax = fig.add_subplot()
    n = len(grid.columns)
    height = 0.8 / n
    for k, dtype in enumerate(grid.columns):
        ys = [i - 0.4 + height * (k + 0.5) for i in range(len(grid.index))]
        ax.barh(ys, grid[dtype].fillna(0).to_list(), height=height, label=str(dtype))
    ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index])
    ax.invert_yaxis()
    positive = grid.to_numpy(dtype=float)
    finite = [v for v in positive.flatten() if v > 0]
    if finite and max(finite) / min(finite) > 100:
        ax.set_xscale("log")
    ax.set_xlabel("samples/s (higher is better)")
    ax.set_title("Throughput per model and dtype")
    ax.legend(title="dtype", fontsize=8)
    return fig


def _table(df: pd.DataFrame, index: bool = False) -> str:
    df = df.copy()
    df.columns.name = None
    return _dots(str(df.to_html(index=index, escape=True, border=0, na_rep="")))


def _dots(text: str) -> str:
    """Escaped HTML with each status icon drawn as a coloured dot: emoji need a colour-emoji font that many
    machines lack. Each status has its own colour (the legend says which)."""
    for status, icon in STATUS_ICONS.items():
        dot = f'<span class="dot" style="color:{_STATUS_COLOURS[status]}" title="{status}">●</span>'
        text = text.replace(html.escape(icon), dot)
    return text


def _env_rows(meta: dict[str, Any]) -> str:
    env = meta.get("environment") or {}
    keep = {k: v for k, v in env.items() if k != "argv"}
    keep["case_files_hash"] = meta.get("case_files_hash")
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in keep.items()
    )
    return f"<table>{rows}</table>"


def _warnings_section(results: list[Result]) -> list[str]:
    """The warnings the variants raised, each with the variants that raised it."""
    groups = warning_groups(results)
    if not groups:
        return []
    rows = "".join(
        f"<tr><td><code>{html.escape(text)}</code></td><td>{len(ids)}</td>"
        f"<td>{html.escape(', '.join(ids[:10]))}{' ...' if len(ids) > 10 else ''}</td></tr>"
        for text, ids in groups
    )
    header = "<tr><th>warning</th><th>variants</th><th>raised by</th></tr>"
    return [f"<h2>Warnings ({len(groups)})</h2>", f"<table>{header}{rows}</table>"]


def render_html(run: Run) -> str:
    """The run as one HTML file: summary, plots, status matrix, benchmarks, failures, environment."""
    results = run.results
    counts = count_statuses(results)
    bad = any(counts.get(s) for s in FAILING)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>cnnbench run {html.escape(run.run_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>cnnbench run <code>{html.escape(run.run_id)}</code>"
        + ("" if run.complete else " (incomplete)")
        + "</h1>",
        f'<p class="summary {"bad" if bad else "good"}">{html.escape(summary_line(counts))}'
        f" in {len(results)} variants</p>",
        f'<p class="env">{html.escape(environment_line(run.meta))}</p>',
    ]
    figures: list[tuple[str, str, Figure | None]] = [
        (
            "throughput",
            "Throughput per model and dtype (best configuration of each)",
            throughput_plot(results),
        ),
        (
            "errors",
            "Max absolute error against the expected values, per op and dtype",
            error_heatmap(results),
        ),
        ("status", "How many variants ended with each status", status_plot(results)),
    ]
    parts.append("<h2>Plots</h2>")
    for name, caption, fig in figures:
        if fig is None:
            continue
        parts.append(
            f'<figure id="plot-{name}"><img alt="{html.escape(caption)}" src="data:image/png;base64,{_png(fig)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    matrix = status_matrix(results)
    if not matrix.empty:
        parts += ["<h2>Status by target, device and dtype</h2>", _table(matrix.reset_index())]
        if status_legend(results):
            parts.append(f'<p class="legend">{_dots(html.escape(status_legend(results)))}</p>')
    bench = bench_display(results)
    if not bench.empty:
        parts += ["<h2>Benchmarks</h2>", _table(bench)]
    failed = failures(results)
    if failed:
        parts.append(f"<h2>Failures ({len(failed)})</h2>")
        for r in failed:
            parts.append(
                f"<h3>{html.escape(r.status)}: <code>{html.escape(r.variant_id)}</code></h3>"
                f"<p>{html.escape(r.file)}:{r.line}</p>"
                f"<pre>{html.escape(r.message.strip() or '(no message)')}</pre>"
                f"<p>Repro: <code>{html.escape(repro_command(r))}</code> · "
                f"<code>{html.escape(repro_script_command(r.variant_id))}</code></p>"
            )
    parts += _warnings_section(results)
    parts += ["<h2>Environment</h2>", _env_rows(run.meta), "</body></html>"]
    return "\n".join(parts) + "\n"

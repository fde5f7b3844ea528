"""The HTML report: one self-contained page (inline CSS, plots as base64 PNG) made with matplotlib's Agg."""

from __future__ import annotations

import base64
import html
import io
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cnnbench.casefile.variants import repro_script_command
from cnnbench.errors import UsageError
from cnnbench.report.ledger import BudgetCell, heat_text, heatmap_cells
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

__all__ = ["budget_heatmap", "render_html", "roofline_plot", "status_plot", "throughput_plot"]

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


def _budget_grid(results: list[Result]) -> tuple[list[str], list[str], dict[tuple[str, str], BudgetCell]]:
    cells = heatmap_cells(results)
    targets = sorted({t for t, _ in cells})
    return targets, dtype_order(d for _, d in cells), cells


def budget_heatmap(results: list[Result]) -> Figure | None:
    """Budget used per op and dtype (the max of the passing variants, 0-1, each cell labelled), failures, errors
    and xfails written in their cell instead of coloured; None without a checked row."""
    targets, dtypes, cells = _budget_grid(results)
    if not cells:
        return None
    values = [[_cell_max(cells.get((t, d))) for d in dtypes] for t in targets]
    fig = _figure(1.6 + 1.35 * len(dtypes), 1.2 + 0.34 * len(targets))
    ax = fig.add_subplot()
    from matplotlib import colormaps

    cmap = colormaps["RdYlGn_r"].with_extremes(bad="#eeeeee")
    image = ax.imshow(
        np.ma.masked_invalid(np.array(values, dtype=float)), aspect="auto", cmap=cmap, vmin=0, vmax=1
    )
    ax.set_xticks(range(len(dtypes)), dtypes)
    ax.set_yticks(range(len(targets)), targets)
    ax.xaxis.tick_top()
    for i, target in enumerate(targets):
        for j, dtype in enumerate(dtypes):
            cell = cells.get((target, dtype))
            if cell is not None:
                ax.text(j, i, _plot_label(cell), ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="budget used (1 = the tolerance)")
    ax.set_title("Budget used per op and dtype (max of the passing variants)")
    return fig


def _cell_max(cell: BudgetCell | None) -> float:
    return math.nan if cell is None or cell.max is None else cell.max


def _plot_label(cell: BudgetCell) -> str:
    """ "0.42" over "fail 1, xfail 2": the marks in words (a plot's font may lack the emoji)."""
    top = f"{cell.max:.2g}" if cell.max is not None else ("n/r" if cell.not_recorded else "")
    marks = ", ".join(f"{_PLOT_MARKS[s]} {n}" for s, n in sorted(cell.counts.items()))
    return "\n".join(x for x in (top, marks) if x)


_PLOT_MARKS = {"failed": "fail", "error": "error", "xfail": "xfail"}


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


def _roofline_points(results: list[Result]) -> pd.DataFrame:
    """One line per timed bench row with a byte count: its device, dtype, intensity, GFLOP/s, GB/s, ceilings."""
    keys = ("intensity", "gflops", "gbs", "compute_ceiling_gflops", "bandwidth_gbs")
    rows = []
    for r in results:
        if r.kind != "bench" or r.status == "skipped" or not isinstance(r.metrics.get("gbs"), int | float):
            continue
        values = {k: r.metrics.get(k) for k in keys}
        rows.append({"target": r.target, "device": r.device, "dtype": r.dtype, **values})
    return pd.DataFrame(rows, columns=["target", "device", "dtype", *keys])


def _ceiling_values(
    df: pd.DataFrame, meta: dict[str, Any]
) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """(device, dtype) -> compute GFLOP/s and device -> GB/s: the run's final ceilings (meta), else the rows'."""
    compute: dict[tuple[str, str], float] = {}
    bandwidth: dict[str, float] = {}
    for row in df.itertuples(index=False):
        if isinstance(row.compute_ceiling_gflops, float | int) and not math.isnan(row.compute_ceiling_gflops):
            key = (str(row.device), str(row.dtype))
            compute[key] = max(compute.get(key, 0.0), float(row.compute_ceiling_gflops))
        if isinstance(row.bandwidth_gbs, float | int) and not math.isnan(row.bandwidth_gbs):
            bandwidth[str(row.device)] = max(bandwidth.get(str(row.device), 0.0), float(row.bandwidth_gbs))
    entries = (meta.get("ceilings") or {}).get("entries") or {}
    for key, entry in entries.items():
        value = entry.get("ceiling") if isinstance(entry, dict) else None
        kind, device, *rest = str(key).split("|")
        if not isinstance(value, int | float):
            continue
        if kind == "bandwidth":
            bandwidth[device] = max(bandwidth.get(device, 0.0), float(value))
        elif kind == "compute" and rest and (device, rest[0]) in compute:
            compute[(device, rest[0])] = max(compute[(device, rest[0])], float(value))
    return compute, bandwidth


def roofline_plot(results: list[Result], meta: dict[str, Any] | None = None) -> Figure | None:
    """Log-log roofline: FLOP/byte vs achieved GFLOP/s, a point per row coloured by dtype, each dtype's compute
    ceiling and the device's bandwidth drawn; rows without FLOPs (pooling, norms, activations) beside it as
    GB/s against the bandwidth. None when no row has a byte count."""
    df = _roofline_points(results)
    if df.empty:
        return None
    compute, bandwidth = _ceiling_values(df, meta or {})
    # Colours by dtype name, as in the throughput plot (its pivot's columns are sorted the same way).
    colours = {d: f"C{i}" for i, d in enumerate(sorted(set(df["dtype"])))}
    markers = {d: m for d, m in zip(sorted(set(df["device"])), "os^Dv", strict=False)}
    has_flops = pd.to_numeric(df["gflops"], errors="coerce") > 0
    flop_rows = df[has_flops & (pd.to_numeric(df["intensity"], errors="coerce") > 0)]
    byte_rows = df[~has_flops]
    if flop_rows.empty and byte_rows.empty:
        return None
    fig = _figure(9.5 if not byte_rows.empty else 7.5, 5.2)
    grid = fig.add_gridspec(1, 2, width_ratios=[3, 1.3]) if not byte_rows.empty else fig.add_gridspec(1, 1)
    ax = fig.add_subplot(grid[0, 0])
    ridges = [c / bandwidth[d] for (d, _), c in compute.items() if bandwidth.get(d)]
    xs = [float(v) for v in flop_rows["intensity"]] + ridges or [1.0]
    lo, hi = min(xs) / 8, max(xs) * 8
    for (device, dtype), ceiling in sorted(compute.items()):
        bw = bandwidth.get(device)
        xs_line = [lo, *([ceiling / bw] if bw and lo < ceiling / bw < hi else []), hi]
        ys_line = [min(ceiling, bw * x) if bw else ceiling for x in xs_line]
        colour = colours.get(dtype, "grey")
        ax.plot(xs_line, ys_line, color=colour, lw=1.4, alpha=0.8)
        label = f"{device} {dtype} {ceiling:.3g} GFLOP/s"
        ax.annotate(label, (hi, ceiling), fontsize=7, ha="right", va="bottom", color=colour)
    for device, bw in sorted(bandwidth.items()):
        x = min([r for (d, _), c in compute.items() if d == device for r in [c / bw]] or [hi]) / 3
        ax.annotate(f"{device} {bw:.3g} GB/s", (x, bw * x), fontsize=7, ha="left", va="top", color="dimgray")
    ys = [float(v) for v in flop_rows["gflops"]] + list(compute.values())
    if ys:
        ax.set_ylim(min(ys) / 3, max(ys) * 2)
    ax.set_xlim(lo, hi)
    for key, group in flop_rows.groupby(["device", "dtype"]):
        device, dtype = (str(k) for k in key)  # type: ignore[union-attr]
        ax.scatter(
            group["intensity"].astype(float),
            group["gflops"].astype(float),
            color=colours[dtype],
            marker=markers.get(device, "o"),
            label=f"{device} {dtype}",
            zorder=3,
            edgecolor="black",
            linewidth=0.4,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.set_xlabel("arithmetic intensity (FLOP/byte, bytes a lower bound)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.set_title("Roofline: each row under min(compute, intensity x bandwidth)")
    ax.grid(True, which="both", alpha=0.25)
    if not flop_rows.empty:
        ax.legend(fontsize=8, loc="lower right")
    if not byte_rows.empty:
        _bandwidth_panel(fig.add_subplot(grid[0, 1]), byte_rows, bandwidth, colours)
    return fig


def _bandwidth_panel(
    ax: Any, rows: pd.DataFrame, bandwidth: dict[str, float], colours: dict[str, str]
) -> None:
    labels = [f"{t} ({d})" for t, d in zip(rows["target"], rows["dtype"], strict=True)]
    ax.barh(labels, rows["gbs"].astype(float), color=[colours[str(d)] for d in rows["dtype"]])
    for device, bw in sorted(bandwidth.items()):
        ax.axvline(bw, color="dimgray", ls="--", lw=1)
        ax.annotate(f"{device} {bw:.3g} GB/s", (bw, 0), fontsize=7, rotation=90, ha="right", va="bottom")
    ax.invert_yaxis()
    ax.set_xlabel("achieved GB/s")
    ax.set_title("Rows without FLOPs", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)


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


def _budget_table(results: list[Result]) -> list[str]:
    """The heatmap's numbers as a table: max budget used per op and dtype, failures and xfails beside them."""
    targets, dtypes, cells = _budget_grid(results)
    if not cells:
        return []
    head = "".join(f"<th>{html.escape(d)}</th>" for d in dtypes)
    rows = "".join(
        f"<tr><th>{html.escape(t)}</th>"
        + "".join(f"<td>{html.escape(heat_text(cells.get((t, d))))}</td>" for d in dtypes)
        + "</tr>"
        for t in targets
    )
    return [
        '<h2 id="budget">Budget used by op and dtype</h2>',
        f"<table><tr><th>target</th>{head}</tr>{rows}</table>",
    ]


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
            "budget",
            "Budget used (max |got - expected| / (atol + rtol |expected|)) per op and dtype: the worst passing "
            "variant; failures and xfails are counted in their cell, not coloured",
            budget_heatmap(results),
        ),
        (
            "roofline",
            "Roofline: achieved GFLOP/s against arithmetic intensity, under each dtype's compute ceiling and "
            "the bandwidth ceiling (bytes are a lower bound); rows without FLOPs as GB/s against bandwidth",
            roofline_plot(results, run.meta),
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
    parts += _budget_table(results)
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

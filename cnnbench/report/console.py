"""The terminal view (rich): a stored run's tables, failures and totals line, and a comparison of two runs."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cnnbench.report.change import Change
from cnnbench.report.diff import Comparison
from cnnbench.report.drift import Drift, group_line, variant_line
from cnnbench.report.tables import (
    MAX_LISTED,
    absent_devices,
    bench_display,
    failures,
    peaks_line,
    repro_command,
    status_legend,
    status_matrix,
)
from cnnbench.report.terminal import make_console
from cnnbench.store.result import FAILING, Result, count_statuses, nothing_ran, summary_line
from cnnbench.store.run import Run

__all__ = ["make_console", "print_comparison", "print_console"]

#: The benchmark figures a terminal has room for (bench_display's column -> a header short enough for 80 columns;
#: the IQR is in the files, the noise flag says when it matters), then "% of bound" with the bound named beside
#: the percentage ("42 compute"); the flags share one more column.
_BENCH_SHOWN = {"median ms": "median\nms", "GFLOP/s": "GFLOP/s", "GB/s": "GB/s"}


def _status_table(run: Run, absent: dict[str, int]) -> Table | None:
    """The status matrix, without the rows of devices this machine lacks (one line each says so instead)."""
    matrix = status_matrix([r for r in run.results if r.device not in absent])
    if matrix.empty:
        return None
    table = Table(title=f"cnnbench run {run.run_id}", show_lines=False)
    table.add_column("target", style="bold")
    table.add_column("device")
    for col in matrix.columns:
        table.add_column(str(col), justify="center")
    for key, row in matrix.iterrows():
        names = [escape(str(k)) for k in key]  # type: ignore[union-attr, attr-defined]
        table.add_row(*names, *(escape(str(v)) for v in row))
    return table


def _split_id(variant_id: str) -> tuple[str, list[str]]:
    """A benchmark variant id as (benchmark, axes): "resnet18[cpu-float32-b8-train-contiguous]" is ("resnet18",
    ["cpu", "float32", "b8", "train", "contiguous"])."""
    name, _, rest = variant_id.partition("[")
    return name, rest.rstrip("]").split("-")


def _varying(split: list[tuple[str, list[str]]]) -> tuple[list[int], list[str]]:
    """The axis positions whose values differ between rows, and the values every row shares (said once, in the
    title, instead of in a column on every row)."""
    width = max(len(axes) for _, axes in split)
    padded = [axes + [""] * (width - len(axes)) for _, axes in split]
    varying = [i for i in range(width) if len({axes[i] for axes in padded}) > 1]
    shared = [padded[0][i] for i in range(width) if i not in varying and padded[0][i]]
    return varying, shared


def _bench_table(results: list[Result]) -> Table | None:
    """One row per benchmark variant: its id and its axes in their own columns, then the figures, laid out to fit
    an 80-column terminal (the figures never wrap; a long name or axes take two lines at most). Axes every row
    shares (often the device and dtype) are said once, in the title."""
    bench = bench_display(results)
    if bench.empty:
        return None
    split = [_split_id(str(v)) for v in bench["variant"]]
    varying, shared = _varying(split)
    flags = [
        " ".join(label for c, label in (("noise", "noisy"), ("path", "slow path")) if row[c])
        for _, row in bench.iterrows()
    ]
    title = "benchmarks" + (f" · {' '.join(shared)}" if shared else "")
    timed = Table(title=escape(title), box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    timed.add_column("benchmark", overflow="fold")
    if varying:
        timed.add_column("axes", no_wrap=True)
    for header in _BENCH_SHOWN.values():
        timed.add_column(header, justify="right", no_wrap=True)
    timed.add_column("% of bound", no_wrap=True)
    if any(flags):
        timed.add_column("flags")
    for (_, row), (name, axes), flag in zip(bench.iterrows(), split, flags, strict=True):
        shown = [" ".join(axes[i] for i in varying if i < len(axes))] if varying else []
        figures = [escape(str(row[c])) for c in _BENCH_SHOWN]
        figures.append(escape(" ".join(str(row[c]) for c in ("% of bound", "bound") if str(row[c]))))
        timed.add_row(escape(name), *(escape(a) for a in shown), *figures, *([flag] if any(flags) else []))
    return timed


def _print_notes(results: list[Result], console: Console) -> None:
    """Why each skipped, expected-failure and mistrusted row ended so, and the warnings each variant raised (the
    verbose view)."""
    absent = absent_devices(results)  # said in one line per device already
    for r in results:
        if r.status == "skipped" and r.device in absent:
            continue
        if r.status in ("skipped", "xfail"):
            console.print(f"[dim]{r.status}[/] {escape(r.variant_id)}: {escape(r.reason)}", highlight=False)
        elif r.status == "mistrusted":
            console.print(f"[dim]mistrusted[/] {escape(r.variant_id)}: {escape(r.message)}", highlight=False)
    for r in results:
        for text in r.warnings:
            console.print(f"[yellow]warning[/] {escape(r.variant_id)}: {escape(text)}", highlight=False)


def print_console(run: Run, console: Console, *, verbose: bool = False) -> None:
    """The terminal summary: a table per target, every failure with its message and repro, the totals line."""
    results = run.results
    absent = absent_devices(results)
    status = _status_table(run, absent)
    if status is not None:
        console.print(status)
        if status_legend(results):
            console.print(status_legend(results), style="dim", highlight=False)
    for device, n in absent.items():
        skipped = f"{n:,} variant{'s' if n != 1 else ''} skipped"
        console.print(f"{escape(device)}: not available, {skipped}", style="dim", highlight=False)
    timed = _bench_table(results)
    if timed is not None:
        console.print(timed)
        if peaks_line(run.meta):
            console.print(peaks_line(run.meta), style="dim", highlight=False)
    for r in failures(results):
        console.print(
            f"[bold red]{r.status.upper()}[/] {escape(r.variant_id)}  [dim]{escape(r.file)}:{r.line}[/]"
        )
        console.print(r.message.strip() or "(no message)", markup=False, highlight=False)
        console.print(f"[dim]repro:[/] {escape(repro_command(r))}", highlight=False)
    if verbose:
        _print_notes(results, console)
    else:
        warned = sum(1 for r in results if r.warnings)
        if warned:
            console.print(
                f"{warned} variant{'s' if warned != 1 else ''} raised warnings (-v shows them)", style="dim"
            )
    counts = count_statuses(results)
    colour = "red" if any(counts.get(s) for s in FAILING) else "green"
    state = "" if run.complete else " (incomplete)"
    if nothing_ran(results):
        what = f"all {len(results)} variants skipped" if results else "no variants"
        colour, state = "yellow", f"{state} · nothing ran: {what}"
    console.print(f"[bold {colour}]{summary_line(counts)}[/]{state}", highlight=False)


def _print_changes(console: Console, title: str, style: str, changes: list[Change]) -> None:
    if not changes:
        return
    console.print(f"[bold {style}]{title} ({len(changes)})[/]")
    for ch in changes[:MAX_LISTED]:
        reason = f"  [dim]allowed: {escape(ch.allowed)}[/]" if ch.allowed else ""
        console.print(
            f"  {escape(ch.variant_id)} [dim]{ch.kind}[/] {escape(ch.detail)}{reason}", soft_wrap=True
        )
    if len(changes) > MAX_LISTED:
        console.print(f"  ... and {len(changes) - MAX_LISTED} more")


def print_comparison(c: Comparison, console: Console) -> None:
    """The comparison in the terminal: regressions first, then the rest, then the verdict line."""
    for w in c.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")
    _print_changes(console, "Regressions", "red", c.regressions)
    _print_changes(console, "Improvements", "green", c.improvements)
    _print_changes(console, "Allowed differences", "yellow", c.allowed)
    _print_changes(console, "Other status changes", "cyan", c.status_changes)
    if c.not_comparable:
        console.print(f"[bold]Not comparable ({len(c.not_comparable)})[/]")
        for detail, changes in c.not_comparable_by_detail().items():
            console.print(f"  {len(changes)} rows: {escape(detail)}")
    for title, ids in (("only in base", c.only_in_base), ("only in new", c.only_in_new)):
        if ids:
            console.print(f"[dim]{len(ids)} variants {title}[/]")
    for e in c.unused_accepted:
        console.print(f"[dim]unused accepted difference {escape(e.pattern)}[/]")
    _print_drift(console, c.drift)
    colour = "red" if c.regressed else "green"
    console.print(f"[bold {colour}]{c.summary()}[/]", highlight=False, soft_wrap=True)


def _print_drift(console: Console, drift: Drift) -> None:
    """Numerics drift: each target x dtype x device whose budget or ulps moved, then the variants that moved."""
    if not drift.variants and not drift.not_recorded:
        return
    moved = drift.moved
    shown = [g for g in drift.groups if g.moved or g.factor is None]
    if not moved:
        console.print(
            f"[bold]Numerics drift[/]: none ({len(drift.variants)} variants, budget and ulps unchanged)"
        )
    else:
        console.print(f"[bold]Numerics drift[/] ({len(moved)} of {len(drift.variants)} variants moved)")
    for g in shown[:MAX_LISTED]:
        console.print(f"  {escape(group_line(g))}", soft_wrap=True, highlight=False)
    if len(shown) > MAX_LISTED:
        console.print(f"  ... and {len(shown) - MAX_LISTED} more groups")
    for v in moved[:MAX_LISTED]:
        console.print(
            f"    {escape(v.variant_id)} [dim]{escape(variant_line(v))}[/]", soft_wrap=True, highlight=False
        )
    if len(moved) > MAX_LISTED:
        console.print(f"    ... and {len(moved) - MAX_LISTED} more variants")

"""The terminal view (rich): a stored run's tables, failures and totals line, and a comparison of two runs."""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cnnbench.report.change import Change
from cnnbench.report.diff import Comparison
from cnnbench.report.tables import (
    MAX_LISTED,
    bench_display,
    failures,
    peaks_line,
    repro_command,
    status_matrix,
)
from cnnbench.store.result import FAILING, Result, count_statuses, nothing_ran, summary_line
from cnnbench.store.run import Run

__all__ = ["make_console", "print_comparison", "print_console"]

#: The benchmark columns a terminal has room for; the flags share one more column. The files show them all.
_BENCH_SHOWN = ("median ms", "IQR ms", "GFLOP/s", "% of peak")


#: The width a console that is not a terminal lays out at: wide enough that no line of cnnbench's is ever wrapped
#: (tables take their natural width; they never stretch to the console's).
_UNWRAPPED_WIDTH = 10_000


def make_console(*, stderr: bool = False, file: IO[str] | None = None) -> Console:
    """The console cnnbench prints on: a terminal's own width there; anywhere else (a pipe, a CI log, a file)
    no wrapping at all, so that each message, id and repro command stays whole on its line."""
    console = Console(stderr=stderr, file=file, highlight=False)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, file=file, highlight=False, width=_UNWRAPPED_WIDTH, soft_wrap=True)


def _status_table(run: Run) -> Table | None:
    matrix = status_matrix(run.results)
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


def _bench_table(results: list[Result]) -> Table | None:
    bench = bench_display(results)
    if bench.empty:
        return None
    timed = Table(title="benchmarks", show_lines=False)
    timed.add_column("variant", overflow="fold")
    for col in _BENCH_SHOWN:
        timed.add_column(col, justify="right", no_wrap=True)
    timed.add_column("flags", no_wrap=True)
    for _, row in bench.iterrows():
        flags = " ".join(label for c, label in (("noise", "noisy"), ("path", "slow path")) if row[c])
        timed.add_row(escape(str(row["variant"])), *(escape(str(row[c])) for c in _BENCH_SHOWN), flags)
    return timed


def _print_notes(results: list[Result], console: Console) -> None:
    """Why each skipped, expected-failure and mistrusted row ended so, and the warnings each variant raised (the
    verbose view)."""
    for r in results:
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
    status = _status_table(run)
    if status is not None:
        console.print(status)
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
    colour = "red" if c.regressed else "green"
    console.print(f"[bold {colour}]{c.summary()}[/]", highlight=False, soft_wrap=True)

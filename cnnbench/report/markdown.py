"""Markdown that fits a GitHub job summary: a stored run (totals, status matrix, benchmarks, each failure with a
repro) and a comparison of two runs."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cnnbench.casefile.variants import repro_script_command
from cnnbench.report.change import Change
from cnnbench.report.diff import Comparison
from cnnbench.report.drift import Drift, group_line, variant_line
from cnnbench.report.ledger import heat_text, heatmap_cells
from cnnbench.report.tables import (
    MAX_LISTED,
    STATUS_ICONS,
    bench_display,
    dtype_order,
    environment_line,
    failures,
    peaks_line,
    repro_command,
    status_legend,
    status_matrix,
    warning_groups,
)
from cnnbench.store.result import Result, count_statuses, summary_line
from cnnbench.store.run import Run

__all__ = ["render_comparison_markdown", "render_markdown"]


def _cell(text: str) -> str:
    """Text that stays inside one table cell: pipes escaped, lines joined."""
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] = ()) -> list[str]:
    """A markdown table's lines; align holds each column's rule ("---", or "---:" for a right-aligned one)."""
    rule = [align[i] if i < len(align) else "---" for i in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(rule) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _frame_table(df: pd.DataFrame) -> str:
    rows = [[_cell(str(v)) for v in row] for row in df.itertuples(index=False)]
    return "\n".join(_table([str(c) for c in df.columns], rows))


def _more(total: int) -> str:
    """The line after a list cut at MAX_LISTED ("" when nothing was cut)."""
    return f"... and {total - MAX_LISTED} more" if total > MAX_LISTED else ""


def _failure(r: Result) -> list[str]:
    script = (
        f" · as a plain torch script: `{repro_script_command(r.variant_id)}`" if r.kind == "check" else ""
    )
    return [
        f"### {STATUS_ICONS.get(r.status, '')} `{r.variant_id}` — {r.status}",
        "",
        f"{r.file}:{r.line}"
        + (f" · {r.source}" if r.source else "")
        + (f" · computed in {r.compute_precision}" if r.compute_precision else ""),
        "",
        "```",
        r.message.strip() or "(no message)",
        "```",
        "",
        f"Repro: `{repro_command(r)}`" + script,
        "",
    ]


def _notes(results: list[Result]) -> list[str]:
    """Skipped and expected-failure rows, counted per status and reason."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.status in ("skipped", "xfail") and r.reason:
            grouped.setdefault((r.status, r.reason), []).append(r.variant_id)
    if not grouped:
        return []
    rows = [[status, str(len(ids)), _cell(reason)] for (status, reason), ids in sorted(grouped.items())]
    table = _table(["status", "variants", "reason"], rows, align=["---", "---:", "---"])
    return ["## Skipped and expected failures", "", *table, ""]


def _warnings(results: list[Result]) -> list[str]:
    """The warnings the variants raised (captured per variant), each with how many variants and the first ones."""
    groups = warning_groups(results)
    if not groups:
        return []
    rows = []
    for text, ids in groups[:MAX_LISTED]:
        shown = ", ".join(f"`{_cell(i)}`" for i in ids[:3]) + (
            f" and {len(ids) - 3} more" if len(ids) > 3 else ""
        )
        rows.append([_cell(text), str(len(ids)), shown])
    table = _table(["warning", "variants", "raised by"], rows, align=["---", "---:", "---"])
    more = [_more(len(groups)) + " warnings.", ""] if len(groups) > MAX_LISTED else []
    return [f"## Warnings ({len(groups)})", "", *table, "", *more]


def render_markdown(run: Run) -> str:
    """A report that fits a GitHub job summary: totals, the status matrix, each failure with a repro."""
    results = run.results
    state = "" if run.complete else " (incomplete: the run stopped before every variant ran)"
    lines = [
        f"# cnnbench run `{run.run_id}`{state}",
        "",
        f"**{summary_line(count_statuses(results))}** in {len(results)} variants · {environment_line(run.meta)}",
        "",
    ]
    if run.dropped_lines:
        lines += [f"> {run.dropped_lines} stored row(s) were cut short and could not be read.", ""]
    matrix = status_matrix(results)
    if not matrix.empty:
        lines += ["## Status by target, device and dtype", "", _frame_table(matrix.reset_index()), ""]
        if status_legend(results):
            lines += [status_legend(results), ""]
    lines += _budget_heatmap(results)
    bench = bench_display(results)
    if not bench.empty:
        lines += ["## Benchmarks", "", _frame_table(bench), ""]
        if peaks_line(run.meta):
            lines += [peaks_line(run.meta), ""]
    failed = failures(results)
    if failed:
        lines += ["## Failures", ""]
        for r in failed[:MAX_LISTED]:
            lines += _failure(r)
        if len(failed) > MAX_LISTED:
            lines += [f"{_more(len(failed))} failures.", ""]
    lines += _notes(results)
    lines += _warnings(results)
    return "\n".join(lines)


def _budget_heatmap(results: list[Result]) -> list[str]:
    """Budget used by op and dtype: the max of the passing variants (0-1, 1 being the tolerance), with failures,
    errors and xfails counted beside it rather than taken as the worst passing error."""
    cells = heatmap_cells(results)
    if not cells:
        return []
    dtypes = dtype_order(d for _, d in cells)
    rows = [
        [t, *(_cell(heat_text(cells.get((t, d)))) for d in dtypes)] for t in sorted({t for t, _ in cells})
    ]
    note = "Max budget used of the passing variants (1 = the tolerance): 🟩 ≤ 0.25 🟨 ≤ 0.5 🟧 ≤ 0.75 🟥 ≤ 1."
    return ["## Budget used by op and dtype", "", note, "", *_table(["target", *dtypes], rows), ""]


def _changes(title: str, changes: list[Change], with_reason: bool = False) -> list[str]:
    if not changes:
        return []
    header = ["variant", "change", "detail", *(["reason"] if with_reason else [])]
    rows = [
        [f"`{ch.variant_id}`", ch.kind, _cell(ch.detail), *([_cell(ch.allowed)] if with_reason else [])]
        for ch in changes[:MAX_LISTED]
    ]
    more = [f"\n{_more(len(changes))}"] if len(changes) > MAX_LISTED else []
    return [f"## {title} ({len(changes)})", "", *_table(header, rows), *more, ""]


def render_comparison_markdown(c: Comparison) -> str:
    """The comparison as markdown (fits a GitHub job summary)."""
    verdict = "❌ regressions found" if c.regressed else "✅ no regressions"
    lines = [f"# cnnbench compare `{c.base_id}` → `{c.new_id}`: {verdict}", "", f"**{c.summary()}**", ""]
    lines += [f"> ⚠️ {w}" for w in c.warnings]
    if c.warnings:
        lines.append("")
    lines += _changes("Regressions", c.regressions)
    lines += _changes("Improvements", c.improvements)
    lines += _changes("Allowed differences", c.allowed, with_reason=True)
    lines += _changes("Other status changes", c.status_changes)
    if c.not_comparable:
        lines += [f"## Not comparable ({len(c.not_comparable)})", ""]
        lines += ["Environment keys differ, so bitwise and performance comparisons were skipped:", ""]
        lines += [
            f"- {len(changes)} rows: {_cell(detail)}"
            for detail, changes in c.not_comparable_by_detail().items()
        ]
        lines.append("")
    for title, ids in (("Only in the base run", c.only_in_base), ("Only in the new run", c.only_in_new)):
        if ids:
            shown = ", ".join(f"`{i}`" for i in ids[:MAX_LISTED])
            more = f" {_more(len(ids))}" if len(ids) > MAX_LISTED else ""
            lines += [f"## {title} ({len(ids)})", "", shown + more, ""]
    if c.unused_accepted:
        lines += ["## Unused accepted differences", ""]
        lines += [f"- `{e.pattern}`: {_cell(e.reason)}" for e in c.unused_accepted]
        lines.append("")
    lines += _drift_section(c.drift)
    return "\n".join(lines)


def _drift_section(drift: Drift) -> list[str]:
    """Numerics drift: the groups whose budget used or ulps moved (or were not recorded), then the variants."""
    if not drift.variants and not drift.not_recorded:
        return []
    moved = drift.moved
    if not moved:
        lines = [
            "## Numerics drift: none",
            "",
            f"{len(drift.variants)} variants: budget used and ulps unchanged.",
            "",
        ]
    else:
        lines = [f"## Numerics drift ({len(moved)} of {len(drift.variants)} variants moved)", ""]
    shown = [g for g in drift.groups if g.moved or g.factor is None]
    lines += [f"- {_cell(group_line(g))}" for g in shown[:MAX_LISTED]]
    if len(shown) > MAX_LISTED:
        lines.append(f"- {_more(len(shown))} groups")
    if shown:
        lines.append("")
    if moved:
        rows = [[f"`{v.variant_id}`", _cell(variant_line(v))] for v in moved[:MAX_LISTED]]
        lines += [
            *_table(["variant", "drift"], rows),
            *([f"\n{_more(len(moved))}"] if len(moved) > MAX_LISTED else []),
            "",
        ]
    return lines

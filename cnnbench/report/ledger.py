"""The numerics ledger: budget used per target x dtype x device over stored runs, grouped by the environment that
decides numerics (torch, CUDA/cuDNN, device name, compute precision), as markdown or HTML; and the budget cells
of one run that the reports' heatmap shows.

A cell summarises the passing variants' budget used (max |got - expected| / (atol + rtol * |expected|), 1 being
the tolerance) as its median and max; failed, errored and xfailed variants are counted beside it, never as the
worst passing error, and variants stored before budgets were (schema v2) as "not recorded".
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnbench.errors import UsageError
from cnnbench.report.drift import budget_factor
from cnnbench.report.tables import dtype_order
from cnnbench.store.result import Result
from cnnbench.store.run import Run, RunStore

__all__ = [
    "BudgetCell",
    "Ledger",
    "LedgerColumn",
    "budget_cells",
    "build_ledger",
    "cell_text",
    "discover_runs",
    "environment_label",
    "heat_text",
    "heatmap_cells",
    "load_runs",
    "render_ledger_html",
    "render_ledger_markdown",
]

#: Statuses whose budget is a passing error (what a cell's median and max are of).
_PASSING = frozenset({"passed", "mistrusted", "xpass"})
#: Statuses counted beside a cell, each with its mark.
_MARKS = {"failed": "❌", "error": "💥", "xfail": "xfail"}


@dataclass
class BudgetCell:
    """The budget used by the variants of one group in one run."""

    budgets: list[float] = field(default_factory=list)
    """The passing variants' finite budgets used."""
    counts: dict[str, int] = field(default_factory=dict)
    """Variants that failed, errored or xfailed, by status."""
    not_recorded: int = 0

    @property
    def p50(self) -> float | None:
        """The median budget used of the passing variants."""
        return statistics.median(self.budgets) if self.budgets else None

    @property
    def max(self) -> float | None:
        """The largest budget used of a passing variant."""
        return max(self.budgets) if self.budgets else None

    def add(self, row: Result) -> None:
        """Count one check row of this group."""
        if row.status in _MARKS:
            self.counts[row.status] = self.counts.get(row.status, 0) + 1
        elif row.status in _PASSING:
            if row.budget_used is None:
                if row.max_abs_err is not None:
                    self.not_recorded += 1
            elif math.isfinite(row.budget_used):
                self.budgets.append(row.budget_used)

    @property
    def empty(self) -> bool:
        """Nothing measured and nothing failed (skipped or shape-only variants)."""
        return not self.budgets and not self.counts and not self.not_recorded


def budget_cells(
    results: Iterable[Result], key: Callable[[Result], tuple[str, ...]]
) -> dict[tuple[str, ...], BudgetCell]:
    """The check rows grouped by key into budget cells (groups with nothing measured left out)."""
    cells: dict[tuple[str, ...], BudgetCell] = {}
    for r in results:
        if r.kind == "check":
            cells.setdefault(key(r), BudgetCell()).add(r)
    return {k: c for k, c in cells.items() if not c.empty}


def heatmap_cells(results: Iterable[Result]) -> dict[tuple[str, str], BudgetCell]:
    """The budget cells of one run by op (target) and dtype, over its devices: what the heatmap shows."""
    return {(k[0], k[1]): c for k, c in budget_cells(results, lambda r: (r.target, r.dtype)).items()}


#: The square a markdown heatmap cell starts with, by its max budget used (up to and including the bound).
_SQUARES = ((0.25, "🟩"), (0.5, "🟨"), (0.75, "🟧"), (math.inf, "🟥"))


def heat_text(cell: BudgetCell | None) -> str:
    """A heatmap cell in text: a coloured square and the max budget used of the passing variants, then the
    failures, errors and xfails counted separately ("🟨 0.42 · ❌ 1"); "" for an empty cell."""
    if cell is None:
        return ""
    parts = []
    if cell.max is not None:
        square = next(mark for bound, mark in _SQUARES if cell.max <= bound)
        parts.append(f"{square} {cell.max:.2g}")
    elif cell.not_recorded:
        parts.append("not recorded")
    parts += [f"{_MARKS[s]} {n}" for s, n in sorted(cell.counts.items())]
    return " · ".join(parts)


def _num(value: float) -> str:
    return f"{value:.3g}"


def cell_text(cell: BudgetCell | None, previous: BudgetCell | None = None) -> str:
    """ "0.12 / 0.48" (p50 / max), with a mark for each failing status and the growth of the max since the
    previous cell when it moved ("▲4x"); "" for a group the run has nothing of."""
    if cell is None:
        return ""
    parts = []
    if cell.budgets:
        parts.append(f"{_num(cell.p50 or 0.0)} / {_num(cell.max or 0.0)}")
        moved = _moved(cell, previous)
        if moved:
            parts.append(moved)
    elif cell.not_recorded:
        parts.append("not recorded")
    parts += [f"{_MARKS[s]} {n}" for s, n in sorted(cell.counts.items())]
    return " ".join(parts)


def _moved(cell: BudgetCell, previous: BudgetCell | None) -> str:
    if previous is None or previous.max is None or cell.max is None:
        return ""
    factor = budget_factor(previous.max, cell.max)
    if factor == 1.0 and previous.p50 == cell.p50:
        return ""
    if math.isinf(factor):
        return "▲ (was exact)"
    return f"{'▲' if factor >= 1 else '▼'}{factor:.3g}x"


def environment_label(run: Run) -> str:
    """What decides a run's numerics, in one line: torch, CUDA, cuDNN, device names, compute precision."""
    env = run.meta.get("environment") or {}
    parts = [f"torch {env.get('torch_version', '?')}"]
    if env.get("cuda_version"):
        parts.append(f"CUDA {env['cuda_version']}")
    if env.get("cudnn_version"):
        parts.append(f"cuDNN {env['cudnn_version']}")
    devices = sorted({r.device for r in run.results if r.kind == "check" and r.status != "skipped"})
    names = []
    for device in devices:
        kind, _, index = device.partition(":")
        if kind == "cpu":
            names.append(str(env.get("cpu_model") or "cpu"))
        else:
            wanted = f"{kind}:{index or 0}"
            accelerators = env.get("accelerators") or []
            names.append(
                next((str(a.get("name")) for a in accelerators if a.get("device") == wanted), device)
            )
    parts += names or ["no devices"]
    precisions = sorted({r.compute_precision for r in run.results if r.compute_precision})
    parts.append("precision " + ("/".join(precisions) if precisions else "not recorded"))
    return " · ".join(parts)


@dataclass(frozen=True)
class LedgerColumn:
    """One stored run: its id, when it started and its environment's label."""

    run_id: str
    started_at: str
    environment: str
    complete: bool = True
    """False for a run that stopped before every variant ran (its header says so)."""

    @property
    def title(self) -> str:
        """The run id, marked when the run is incomplete."""
        return self.run_id + ("" if self.complete else " (incomplete)")


@dataclass
class Ledger:
    """Budget cells per (target, dtype, device) and run, the runs grouped by environment."""

    columns: list[LedgerColumn]
    rows: list[tuple[str, str, str]]
    cells: dict[tuple[tuple[str, str, str], str], BudgetCell]
    """(row key, run id) -> cell."""

    def cell(self, row: tuple[str, str, str], run_id: str) -> BudgetCell | None:
        """The cell of a row in a run, or None when the run has nothing of that group."""
        return self.cells.get((row, run_id))

    def groups(self) -> list[tuple[str, list[LedgerColumn]]]:
        """The columns as consecutive runs of one environment label each."""
        out: list[tuple[str, list[LedgerColumn]]] = []
        for column in self.columns:
            if out and out[-1][0] == column.environment:
                out[-1][1].append(column)
            else:
                out.append((column.environment, [column]))
        return out


def build_ledger(runs: Sequence[Run]) -> Ledger:
    """The ledger of runs: environments in the order they first ran, each one's runs by start time."""
    if not runs:
        raise UsageError("cnnbench ledger: no stored runs to tabulate")
    ordered = sorted(runs, key=lambda r: (str(r.meta.get("started_at") or ""), r.run_id))
    first_seen: dict[str, int] = {}
    for run in ordered:
        first_seen.setdefault(environment_label(run), len(first_seen))
    ordered.sort(key=lambda r: first_seen[environment_label(r)])  # stable: start order within an environment
    columns = [
        LedgerColumn(run.run_id, str(run.meta.get("started_at") or ""), environment_label(run), run.complete)
        for run in ordered
    ]
    if len({c.run_id for c in columns}) != len(columns):
        raise UsageError("cnnbench ledger: the same run is named twice")
    cells: dict[tuple[tuple[str, str, str], str], BudgetCell] = {}
    for run in ordered:
        for key, cell in budget_cells(run.results, lambda r: (r.target, r.dtype, r.device)).items():
            cells[((key[0], key[1], key[2]), run.run_id)] = cell
    rows = sorted({row for row, _ in cells}, key=_row_order)
    return Ledger(columns, rows, cells)


def _row_order(row: tuple[str, str, str]) -> tuple[str, int, str, str]:
    order = dtype_order(["float64", "float32", "float16", "bfloat16", row[1]])
    return (row[0], order.index(row[1]), row[1], row[2])


def discover_runs(root: str | Path) -> list[Path]:
    """Every stored run under root (any folder holding a meta.json, at any depth), in path order."""
    base = Path(root)
    if not base.is_dir():
        raise UsageError(f"cnnbench ledger: no reports folder {base}")
    found = sorted(p.parent for p in base.rglob("meta.json"))
    if not found:
        raise UsageError(f"cnnbench ledger: no stored run under {base}")
    return found


def load_runs(specs: Sequence[str], reports: str) -> list[Run]:
    """The runs named (directories or ids under reports), or every run stored under reports."""
    store = RunStore(reports)
    return (
        [store.load(str(p)) for p in discover_runs(reports)] if not specs else [store.load(s) for s in specs]
    )


def _previous(ledger: Ledger, row: tuple[str, str, str], index: int) -> BudgetCell | None:
    """The cell of row in the nearest run to the left that has one."""
    for column in reversed(ledger.columns[:index]):
        cell = ledger.cell(row, column.run_id)
        if cell is not None:
            return cell
    return None


_INTRO = (
    "Budget used of the passing variants (p50 / max; 1 is the tolerance) per target, dtype and device, in each "
    "run; ▲/▼ marks a cell whose budget moved since the run to its left, ❌/💥/xfail count variants that failed, "
    "errored or failed as expected (never counted in the budget)."
)


def _escape_md(text: str) -> str:
    return text.replace("|", "\\|")


def render_ledger_markdown(ledger: Ledger) -> str:
    """The ledger as a markdown table: a column per run, headed by its environment and id."""
    lines = ["# cnnbench numerics ledger", "", _INTRO, ""]
    for n, (label, columns) in enumerate(ledger.groups(), 1):
        ids = ", ".join(f"`{c.run_id}`" for c in columns)
        lines.append(f"- **env {n}**: {_escape_md(label)} (runs {ids})")
    lines.append("")
    env_of = {c.run_id: n for n, (_, cols) in enumerate(ledger.groups(), 1) for c in cols}
    header = [
        "target",
        "dtype",
        "device",
        *(f"env {env_of[c.run_id]} · `{c.title}`" for c in ledger.columns),
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in ledger.rows:
        cells = [
            _escape_md(cell_text(ledger.cell(row, c.run_id), _previous(ledger, row, i)))
            for i, c in enumerate(ledger.columns)
        ]
        lines.append("| " + " | ".join([*row, *cells]) + " |")
    return "\n".join(lines) + "\n"


def _background(cell: BudgetCell | None) -> str:
    """A cell's colour: green at budget 0 through yellow to red at 1 (its max), grey without a budget."""
    if cell is None or cell.max is None:
        return "#f4f4f4"
    x = min(max(cell.max, 0.0), 1.0)
    red, green = (int(255 * min(1.0, 2 * x)), int(255 * min(1.0, 2 * (1 - x))))
    return f"rgba({red}, {green}, 60, 0.35)"


def render_ledger_html(ledger: Ledger) -> str:
    """The ledger as one HTML page: environments as header groups, a cell coloured by its max budget used."""
    esc = html.escape
    groups = ledger.groups()
    top = "".join(f'<th colspan="{len(cols)}">{esc(label)}</th>' for label, cols in groups)
    ids = "".join(f"<th><code>{esc(c.title)}</code></th>" for c in ledger.columns)
    body = []
    for row in ledger.rows:
        tds = []
        for i, column in enumerate(ledger.columns):
            cell = ledger.cell(row, column.run_id)
            text = cell_text(cell, _previous(ledger, row, i))
            moved = ' class="moved"' if ("▲" in text or "▼" in text) else ""
            tds.append(f'<td{moved} style="background:{_background(cell)}">{esc(text)}</td>')
        body.append("<tr>" + "".join(f"<th>{esc(v)}</th>" for v in row) + "".join(tds) + "</tr>")
    css = (
        "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f4f4f4}"
        "td.moved{outline:2px solid #1565c0;font-weight:600}"
    )
    parts: list[Any] = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>cnnbench numerics ledger</title>',
        f"<style>{css}</style></head><body><h1>cnnbench numerics ledger</h1><p>{esc(_INTRO)}</p>",
        f'<table><tr><th colspan="3" rowspan="2">target · dtype · device</th>{top}</tr><tr>{ids}</tr>',
        *body,
        "</table></body></html>",
    ]
    return "\n".join(parts) + "\n"

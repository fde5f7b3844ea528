"""A stored run as data for other programs: JSON (metadata and rows) and CSV (rows)."""

from __future__ import annotations

import json

from cnnbench.report.tables import frame
from cnnbench.store.run import Run

__all__ = ["render_csv", "render_json"]


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

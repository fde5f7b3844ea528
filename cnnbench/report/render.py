"""The one registry of report formats: each name (``cnnbench report --format``) and the function rendering a
stored run as that text. The renderers are imported here, and none imports this module back."""

from __future__ import annotations

from collections.abc import Callable

from cnnbench.errors import UsageError
from cnnbench.report.data import render_csv, render_json
from cnnbench.report.html import render_html
from cnnbench.report.junit import render_junit
from cnnbench.report.markdown import render_markdown
from cnnbench.store.run import Run

__all__ = ["CONSOLE", "FORMATS", "RENDERERS", "render"]

#: Each format that renders a run as text, by name.
RENDERERS: dict[str, Callable[[Run], str]] = {
    "markdown": render_markdown,
    "html": render_html,
    "junit": render_junit,
    "json": render_json,
    "csv": render_csv,
}
#: The terminal view: it draws on a rich console (colours, the terminal's width) rather than returning text,
#: so it is console.print_console and not a renderer here.
CONSOLE = "console"
#: Every format `cnnbench report --format` takes, in the order its messages list them.
FORMATS = (*sorted(RENDERERS), CONSOLE)


def render(run: Run, fmt: str) -> str:
    """The run rendered as fmt, one of RENDERERS (a UsageError naming the formats otherwise)."""
    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise UsageError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    return renderer(run)

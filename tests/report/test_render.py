"""The registry of report formats: every format through `cnnbench report`, unknown ones refused, and the text
formats need neither matplotlib nor torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cnnbench.cli import main
from cnnbench.errors import UsageError
from cnnbench.report.render import FORMATS, RENDERERS, render
from cnnbench.store.run import Run


@pytest.mark.parametrize("fmt", ["markdown", "html", "junit", "json", "csv"])
def test_report_cli_writes_every_format(run: Run, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out" / f"report.{fmt}"
    assert main(["report", str(run.path), "--format", fmt, "-o", str(out)]) == 0
    assert out.stat().st_size > 100


def test_report_cli_unknown_format(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run.path), "--format", "pdf"]) == 2
    assert "html" in capsys.readouterr().err


def test_unknown_format_names_every_format(run: Run) -> None:
    assert FORMATS == ("csv", "html", "json", "junit", "markdown", "console")
    with pytest.raises(
        UsageError, match="--format pdf: expected one of csv, html, json, junit, markdown, console"
    ):
        render(run, "pdf")


def test_render_is_the_registry_s_renderer(run: Run) -> None:
    for fmt, renderer in RENDERERS.items():
        if fmt != "html":  # html draws plots: the html tests cover it
            assert render(run, fmt) == renderer(run)


def test_text_formats_need_no_matplotlib(run: Run) -> None:
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # any import of matplotlib now fails\n"
        "from cnnbench.cli import main\n"
        f"for fmt in ('markdown', 'junit', 'json', 'csv', 'console'):\n"
        f"    assert main(['report', {str(run.path)!r}, '--format', fmt]) == 0, fmt\n"
        f"assert main(['report', {str(run.path)!r}, '--format', 'html']) == 2\n"
        "assert not [m for m in sys.modules if m.startswith('matplotlib.')]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pip install 'cnnbench[html]'" in done.stderr

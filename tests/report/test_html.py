"""HTML: one self-contained page with its plots, escaped messages, a clear message without matplotlib."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from synthetic_runs import check_row, make_run

from cnnbench.errors import UsageError
from cnnbench.report.html import render_html
from cnnbench.store.run import Run

CHROMIUM = Path("/usr/bin/chromium")


def test_html_is_one_self_contained_file(run: Run) -> None:
    text = render_html(run)
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", text, flags=re.IGNORECASE)
    assert refs and all(r.startswith("data:") for r in refs), [
        r[:40] for r in refs if not r.startswith("data:")
    ]
    assert "<link" not in text and "<script" not in text and "@import" not in text and "url(" not in text
    for plot in ("throughput", "errors", "status"):
        assert f'id="plot-{plot}"><img alt=' in text
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', text)) == 3
    assert "&lt;b&gt;&amp;&quot;quoted&quot;&lt;/b&gt;" in text  # messages are escaped
    assert "Benchmarks" in text and "Environment" in text


def test_html_without_bench_rows_has_no_throughput_plot(tmp_path: Path) -> None:
    text = render_html(make_run(tmp_path / "r", [check_row("conv"), check_row("pool", status="failed")]))
    assert 'id="plot-throughput"' not in text and 'id="plot-errors"' in text and 'id="plot-status"' in text


def test_html_environment_line_is_the_markdown_one(tmp_path: Path) -> None:
    text = render_html(make_run(tmp_path / "r", [check_row("conv")], env={"cuda_version": "12.1"}))
    assert (
        '<p class="env">torch 2.14.1 · Python 3.11.7 · Synthetic CPU · 2 threads · devices: cpu · CUDA 12.1</p>'
        in text
    )


def test_html_without_matplotlib_says_how_to_install_it(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(UsageError, match=r"pip install 'cnnbench\[html\]'"):
        render_html(run)


def _colours(png: Path) -> int:
    from matplotlib.image import imread

    pixels = imread(png)
    flat = pixels.reshape(-1, pixels.shape[-1])[::97]
    return len({tuple(round(float(c), 2) for c in px[:3]) for px in flat})


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")
def test_html_opens_in_headless_chromium_and_shows_its_plots(run: Run, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(run), encoding="utf-8")
    shot = tmp_path / "shot.png"
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--screenshot={shot}",
                "--window-size=1200,2000",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert shot.stat().st_size > 20_000
    # The plots' bars, heatmap and text give hundreds of distinct colours; a blank or broken page a handful.
    assert _colours(shot) > 50


def test_html_lists_the_warnings_variants_raised(tmp_path: Path) -> None:
    rows = [check_row(f"c{i}", warnings=["UserWarning: <slow> path"]) for i in range(2)] + [
        check_row("quiet")
    ]
    text = render_html(make_run(tmp_path / "r", rows))
    assert "<h2>Warnings (1)</h2>" in text
    assert (
        "<td><code>UserWarning: &lt;slow&gt; path</code></td><td>2</td><td>c0[cpu-float32], c1[cpu-float32]</td>"
        in text
    )

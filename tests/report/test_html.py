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
    for plot in ("throughput", "budget", "status"):
        assert f'id="plot-{plot}"><img alt=' in text
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', text)) == 3
    assert "&lt;b&gt;&amp;&quot;quoted&quot;&lt;/b&gt;" in text  # messages are escaped
    assert "Benchmarks" in text and "Environment" in text


def test_html_without_bench_rows_has_no_throughput_plot(tmp_path: Path) -> None:
    text = render_html(make_run(tmp_path / "r", [check_row("conv"), check_row("pool", status="failed")]))
    assert 'id="plot-throughput"' not in text and 'id="plot-budget"' in text and 'id="plot-status"' in text


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


def test_html_budget_heatmap_and_its_table(tmp_path: Path) -> None:
    from cnnbench.report.html import budget_heatmap

    rows = [
        check_row("conv-a", budget_used=0.25),
        check_row("conv-b", status="failed", budget_used=40.0, mismatches=3),
        check_row("lp", target="lp_pool2d", status="xfail", budget_used=0.95, reason="known"),
    ]
    text = render_html(make_run(tmp_path / "r", rows))
    table = text.split('<h2 id="budget">Budget used by op and dtype</h2>', 1)[1].split("</table>", 1)[0]
    assert "<tr><th>conv2d</th><td>🟩 0.25 · ❌ 1</td></tr>" in table
    assert "<tr><th>lp_pool2d</th><td>xfail 1</td></tr>" in table
    fig = budget_heatmap(rows)
    assert fig is not None
    (ax,) = [a for a in fig.axes if a.get_title()]
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == ["0.25\nfail 1", "xfail 1"]
    image = ax.images[0].get_array()
    assert image.mask.tolist() == [[False], [True]]  # the xfail-only cell is not coloured
    assert float(image[0, 0]) == 0.25 and ax.images[0].get_clim() == (0, 1)
    assert budget_heatmap([check_row("s", status="skipped", max_abs_err=None, budget_used=None)]) is None


def test_html_has_a_roofline_chart_of_the_bench_rows(tmp_path: Path) -> None:
    from synthetic_runs import bench_row

    from cnnbench.report.html import roofline_plot

    ceilings = {"compute_ceiling_gflops": 100.0, "bandwidth_gbs": 10.0}
    conv = bench_row(
        "conv2d", [1.0, 1.1], metrics={"intensity": 20.0, "gflops": 60.0, "gbs": 3.0, **ceilings}
    )
    gemm = bench_row(
        "linear", [1.0, 1.1], "bfloat16", metrics={"intensity": 4.0, "gflops": 30.0, "gbs": 7.5, **ceilings}
    )
    pool = bench_row(
        "max_pool2d", [1.0, 1.1], metrics={"intensity": 0.0, "gflops": None, "gbs": 5.0, **ceilings}
    )
    fig = roofline_plot([conv, gemm, pool], {})
    assert fig is not None
    chart, side = fig.axes
    assert chart.get_xscale() == chart.get_yscale() == "log"
    points = sorted(tuple(map(float, p)) for c in chart.collections for p in c.get_offsets())
    assert points == [(4.0, 30.0), (20.0, 60.0)]  # one point per row with FLOPs, at (intensity, GFLOP/s)
    roofs = {line.get_color(): list(zip(*line.get_data(), strict=True)) for line in chart.get_lines()}
    assert len(roofs) == 2  # a roof per dtype: min(100, 10 x intensity), the ridge at 10 FLOP/byte
    for roof in roofs.values():
        assert (10.0, 100.0) in roof and all(y == pytest.approx(min(100.0, 10.0 * x)) for x, y in roof)
    assert [bar.get_width() for bar in side.patches] == [5.0]  # the pool's GB/s beside the bandwidth
    page = render_html(make_run(tmp_path / "run", [conv, gemm, pool]))
    assert 'id="plot-roofline"><img alt="Roofline' in page
    assert roofline_plot([check_row("relu")], {}) is None


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

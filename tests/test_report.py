"""Reports: markdown with benchmarks, JUnit XML (valid, counts match), self-contained HTML with plots."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from synthetic_runs import bench_row, check_row, make_run, replicates

from cnnbench.cli import main
from cnnbench.errors import UsageError
from cnnbench.report.junit import junit_counts
from cnnbench.report.tables import bench_table, render_html, render_junit, render_markdown
from cnnbench.store.result import Result
from cnnbench.store.run import Run

CHROMIUM = Path("/usr/bin/chromium")


def _rows() -> list[Result]:
    rows = [
        check_row("conv", "float32", target="conv2d", file="cases/a.yaml"),
        check_row("conv", "bfloat16", target="conv2d", file="cases/a.yaml", max_abs_err=0.01),
        check_row(
            "pool",
            "float32",
            status="failed",
            target="max_pool2d",
            file="cases/sub/b.yaml",
            line=12,
            mismatches=1,
            max_abs_err=0.5,
            message='output: 1 of 4 elements differ <b>&"quoted"</b>\x1b[31m\x00',
        ),
        check_row(
            "pool", "float64", status="error", target="max_pool2d", file="cases/sub/b.yaml", message="boom"
        ),
        check_row("relu", "float32", status="skipped", reason="no CUDA", target="relu", max_abs_err=None),
        check_row("relu", "int64", status="xfail", reason="no int kernel", target="relu", max_abs_err=None),
        check_row("tanh", "float32", status="xpass", target="tanh", message="expected to fail but passed"),
    ]
    for model, ms in (("resnet18", 40.0), ("lenet", 0.3)):
        rows.append(bench_row(model, replicates(ms, seed=1)))
        rows.append(bench_row(model, replicates(ms * 200, seed=2, spread=0.2), dtype="bfloat16"))
    return rows


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return make_run(tmp_path / "run-1", _rows())


def test_markdown_has_a_benchmark_table(run: Run) -> None:
    text = render_markdown(run)
    assert "## Benchmarks" in text
    assert "| variant | samples/s | median ms | IQR ms | GFLOP/s | % of peak | noise |" in text
    line = next(x for x in text.splitlines() if x.startswith("| bench-resnet18-b8[cpu-bfloat16]"))
    assert "⚠️ noisy" in line
    assert "## Failures" in text and "cnnbench run cases/sub/b.yaml -k 'pool[cpu-float32]'" in text


def test_markdown_without_bench_rows_has_no_benchmark_section(tmp_path: Path) -> None:
    text = render_markdown(make_run(tmp_path / "r", [check_row("conv")]))
    assert "Benchmarks" not in text
    assert bench_table([check_row("conv")]).empty


def test_junit_is_valid_and_counts_match_the_run(run: Run) -> None:
    root = ET.fromstring(render_junit(run))
    assert root.tag == "testsuites"
    counts = junit_counts(run.results)
    assert (counts["tests"], counts["failures"], counts["errors"], counts["skipped"]) == (11, 1, 1, 2)
    for key in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(key, "-1")) == counts[key]
        assert sum(int(s.get(key, "-1")) for s in root.iter("testsuite")) == counts[key]
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {
        "cases/synthetic.yaml",
        "cases/a.yaml",
        "cases/sub/b.yaml",
        "cases/bench/models.yaml",
    }
    for suite in suites.values():
        assert int(suite.get("tests", "0")) == len(suite.findall("testcase"))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(cases) == 11
    failed = cases["pool[cpu-float32]"]
    assert failed.get("classname") == "cases.sub.b.yaml"  # as pytest --junitxml names a YAML item
    assert failed.get("file") == "cases/sub/b.yaml" and failed.get("line") == "12"
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith('output: 1 of 4 elements differ <b>&"quoted"</b>')
    assert "cases/sub/b.yaml:12" in (failure.text or "") and "repro: cnnbench run" in (failure.text or "")
    assert cases["pool[cpu-float64]"].find("error") is not None
    skipped = cases["relu[cpu-float32]"].find("skipped")
    assert skipped is not None and skipped.get("message") == "no CUDA"
    xfail = cases["relu[cpu-int64]"].find("skipped")
    assert xfail is not None and xfail.get("type") == "pytest.xfail"
    assert len(list(cases["tanh[cpu-float32]"])) == 1  # xpass passes, with a note in system-out
    props = {p.get("name"): p.get("value") for p in cases["bench-lenet-b8[cpu-float32]"].iter("property")}
    assert float(props["median_ms"] or 0) > 0


def test_junit_escapes_and_drops_characters_xml_cannot_hold(run: Run) -> None:
    text = render_junit(run)
    assert "\x1b" not in text and "\x00" not in text
    assert "&lt;b&gt;&amp;" in text
    ET.fromstring(text)


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


def test_html_without_matplotlib_says_how_to_install_it(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(UsageError, match=r"pip install 'cnnbench\[html\]'"):
        render_html(run)


@pytest.mark.parametrize("fmt", ["markdown", "html", "junit", "json", "csv"])
def test_report_cli_writes_every_format(run: Run, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out" / f"report.{fmt}"
    assert main(["report", str(run.path), "--format", fmt, "-o", str(out)]) == 0
    assert out.stat().st_size > 100


def test_report_cli_unknown_format(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run.path), "--format", "pdf"]) == 2
    assert "html" in capsys.readouterr().err


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

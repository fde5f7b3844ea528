"""JUnit XML: valid, counts match the run, names as pytest gives them, characters XML cannot hold dropped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from synthetic_runs import check_row, make_run

from cnnbench.report.junit import junit_counts, render_junit
from cnnbench.store.run import Run


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
    # xpass passes, with a note in system-out (after its measured errors)
    assert [e.tag for e in cases["tanh[cpu-float32]"]] == ["properties", "system-out"]
    assert failed[0].tag == "properties"
    props = {p.get("name"): p.get("value") for p in cases["bench-lenet-b8[cpu-float32]"].iter("property")}
    assert float(props["median_ms"] or 0) > 0


def test_junit_escapes_and_drops_characters_xml_cannot_hold(run: Run) -> None:
    text = render_junit(run)
    assert "\x1b" not in text and "\x00" not in text
    assert "&lt;b&gt;&amp;" in text
    ET.fromstring(text)


def test_check_testcases_carry_errors_budget_and_ulps_as_properties(tmp_path: Path) -> None:
    rows = [
        check_row("conv", budget_used=0.25, ulps_max=3.0, ulps_p99=1.5, max_abs_err=2e-7),
        check_row("old", budget_used=None, ulps_max=None, ulps_p99=None, max_abs_err=None, max_rel_err=None),
    ]
    root = ET.fromstring(render_junit(make_run(tmp_path / "r", rows)))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["conv[cpu-float32]"].iter("property")}
    assert props == {
        "max_abs_err": "2e-07",
        "max_rel_err": "1e-07",
        "budget_used": "0.25",
        "ulps_max": "3.0",
        "ulps_p99": "1.5",
    }
    assert cases["old[cpu-float32]"].find("properties") is None  # a migrated row recorded none

"""The pytest plugin end to end (pytester): collection, failures with file:line, -k, -x, --junitxml, xdist,
no torch import for projects without case files, agreement with `cnnbench run` on the seed suite, and
benchmarks through pytest-benchmark (--benchmark-only, its JSON and machine_info)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import torch  # before any in-process pytester run (see below)
import torch._dynamo  # imported once, outside the in-process pytester runs (see below)
from repo import REPO

from cnnbench.bench import timing
from cnnbench.cli import main
from cnnbench.store.run import RunStore

CASES = """\
defaults:
  devices: [cpu]
  dtypes: [float32, float64]
cases:
  - id: relu-ok
    op: relu
    inputs: {x: [-1.0, 2.0]}
    expect: {output: [0.0, 2.0]}

  - id: relu-wrong
    op: relu
    inputs: {x: [-1.0, 2.0]}
    expect: {output: [0.0, 2.5]}

  - id: on-cuda
    op: relu
    devices: [cuda]
    inputs: {x: [1.0]}
    expect: {output: [1.0]}

  - id: known-bug
    op: relu
    dtypes: [float32]
    inputs: {x: [1.0]}
    expect: {output: [3.0]}
    xfail: [{reason: documented upstream bug}]
"""

# torch is imported here, before any in-process pytester run: pytester drops the modules first imported during
# a run when it ends, and torch cannot be imported a second time in one process (it crashes the interpreter).

#: pytest's outcome for each cnnbench status (the plugin's mapping).
PYTEST_OUTCOME = {
    "passed": "passed",
    "failed": "failed",
    "error": "failed",
    "skipped": "skipped",
    "xfail": "xfailed",
    "xpass": "passed",
    "mistrusted": "passed",
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", cases=CASES)
    pytester.makefile(".yaml", config="name: not a case file\nitems: [1, 2]\n")
    return pytester


def test_collects_one_item_per_variant_named_by_its_id(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [
        "cases.yaml::relu-ok[cpu-float32]",
        "cases.yaml::relu-ok[cpu-float64]",
        "cases.yaml::relu-wrong[cpu-float32]",
        "cases.yaml::relu-wrong[cpu-float64]",
        "cases.yaml::on-cuda[cuda-float32]",
        "cases.yaml::on-cuda[cuda-float64]",
        "cases.yaml::known-bug[cpu-float32]",
    ]


def test_failure_shows_the_mismatch_with_file_and_line(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2, skipped=2, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*cases.yaml:10: relu-wrong[[]cpu-float32[]] failed",
            "output: 1 of 2 elements differ (max abs err 0.5*",
            "  at [[]1[]]: expected 2.5, got 2 *",
            "repro: cnnbench run cases.yaml -k 'relu-wrong[[]cpu-float32[]]'",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_keyword_and_exitfirst(project: pytest.Pytester) -> None:
    project.runpytest("-k", "relu-ok and float64").assert_outcomes(passed=1, deselected=6)
    result = project.runpytest("-x", "-k", "wrong")
    result.assert_outcomes(failed=1, deselected=5)


def test_junitxml(project: pytest.Pytester) -> None:
    project.runpytest("--junitxml=out.xml").assert_outcomes(passed=2, failed=2, skipped=2, xfailed=1)
    root = ET.parse(project.path / "out.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "2", "3")
    names = {c.get("name") for c in suite.iter("testcase")}
    assert "relu-wrong[cpu-float64]" in names and "known-bug[cpu-float32]" in names
    failure = next(c for c in suite.iter("testcase") if c.get("name") == "relu-wrong[cpu-float32]").find(
        "failure"
    )
    assert failure is not None and "cases.yaml:10" in (failure.text or "")


def test_xdist(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2, skipped=2, xfailed=1)
    assert "2 workers" in result.stdout.str()


def test_plugin_does_not_import_torch_without_case_files(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import json, sys

        def pytest_sessionfinish(session):
            loaded = session.config.pluginmanager.has_plugin("cnnbench")
            with open("modules.json", "w") as f:
                json.dump({"torch": "torch" in sys.modules, "plugin": loaded}, f)
        """
    )
    pytester.makepyfile(test_plain="def test_one():\n    assert 1 + 1 == 2\n")
    pytester.makefile(".yaml", settings="name: just data\ncase: not a case file\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert json.loads((pytester.path / "modules.json").read_text()) == {"torch": False, "plugin": True}


def test_malformed_case_file_is_one_collection_error_with_its_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        cases="cases:\n  - id: x\n    op: reluu\n    inputs: {x: [1.0]}\n    expect: {output: [1.0]}\n",
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(['*cases.yaml:3:*unknown op "reluu" (did you mean "relu"?)*'])


@pytest.mark.skipif(not (REPO / "cases").is_dir(), reason="no case files under cases/")
def test_pytest_and_cnnbench_run_agree_on_every_variant(pytester: pytest.Pytester, tmp_path: Path) -> None:
    cases = REPO / "cases" / "seeds"
    target = cases if cases.is_dir() else REPO / "cases"
    main(["run", str(target), "--kind", "check", "--reports", str(tmp_path / "reports")])
    expected = {
        r.variant_id: PYTEST_OUTCOME[r.status] for r in RunStore(tmp_path / "reports").load(None).results
    }
    recorder = pytester.inline_run(str(target), "-q", "-p", "no:cacheprovider")
    got: dict[str, str] = {}
    for report in recorder.getreports("pytest_runtest_logreport"):
        name = report.nodeid.split("::")[-1]
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if hasattr(report, "wasxfail"):
                got[name] = "xfailed" if report.skipped else "passed"
            else:
                got[name] = report.outcome
    assert len(got) == len(expected) > 100
    assert {k: v for k, v in got.items() if expected.get(k) != v} == {}


BENCH_FILE = """\
cases:
  - {id: relu, op: relu, devices: [cpu], inputs: {x: [-1.0, 2.0]}, expect: {output: [0.0, 2.0]}}
benchmarks:
  - {id: mnist, model: mnist_cnn, devices: [cpu], batch: [2], max_time_s: 0.05}
"""


def test_pytest_benchmark_only_runs_benchmarks_and_writes_json(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under pytest-xdist this variable would make pytest-benchmark disable itself in the inner run.
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makefile(".yaml", bench=BENCH_FILE)
    storage = f"file://{pytester.path / 'storage'}"
    common = ["-p", "no:cacheprovider", "--benchmark-only", f"--benchmark-storage={storage}"]
    # In-process (torch is imported above, and cannot be imported twice in one process). Nor can torch._dynamo,
    # which registers a TORCH_LIBRARY when imported (FlopCounterMode's first convolution imports it): imported at
    # the top of this file, it is not among the modules pytester drops after the first inner run.
    result = pytester.runpytest(*common, "--benchmark-json=out.json", "--benchmark-autosave")
    result.assert_outcomes(passed=1, skipped=1)
    data = json.loads((pytester.path / "out.json").read_text())
    assert data["machine_info"]["torch"]["torch_version"] == torch.__version__
    assert "cuda_version" in data["machine_info"]["torch"]
    (bench,) = data["benchmarks"]
    assert bench["name"] == "mnist[cpu-float32-b2-inference-contiguous]" and bench["group"] == "mnist"
    assert bench["stats"]["rounds"] >= 5 and bench["extra_info"]["flop_fwd"] > 0
    assert bench["extra_info"]["cnnbench_status"] == "passed"
    # Against the machine's ceilings, as in `cnnbench run`: a bound and a % of it.
    assert bench["extra_info"]["bound"] == "compute" and 0 < bench["extra_info"]["pct_of_bound"] <= 100
    compared = pytester.runpytest(*common, "--benchmark-compare")
    compared.assert_outcomes(passed=1, skipped=1)
    assert "mnist[cpu-float32-b2-inference-contiguous] (0001" in compared.stdout.str()


def test_benchmark_items_time_with_the_shared_warm_up_and_round_sizing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin's benchmark items warm up and size rounds with cnnbench.bench.timing's rules, not a copy."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    called: list[str] = []
    for name in ("warm_up", "plan_rounds"):
        real = getattr(timing, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            called.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(timing, name, spy)
    pytester.makefile(".yaml", bench=BENCH_FILE)
    pytester.runpytest("-p", "no:cacheprovider", "--benchmark-only").assert_outcomes(passed=1, skipped=1)
    assert called == ["warm_up", "plan_rounds"]


def test_absent_device_is_a_usage_error_and_all_skipped_exits_5(pytester: pytest.Pytester) -> None:
    from cnnbench.environment import device_available

    absent = next(d for d in ("cuda", "mps", "xpu") if not device_available(d))
    pytester.makefile(".yaml", cases=CASES.replace("devices: [cuda]", f"devices: [{absent}]"))
    result = pytester.runpytest("--cnnbench-device", absent)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--cnnbench-device {absent}: not available on this machine (devices present: cpu*"]
    )
    # Every collected variant skipped (its device is absent): exit 5, as `cnnbench run` does.
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "on-cuda")
    result.assert_outcomes(skipped=2, deselected=5)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["cnnbench: nothing ran: all 2 variants skipped (exit 5)"])
    # One variant that ran is enough for the usual verdict.
    assert pytester.runpytest("-p", "no:cacheprovider", "-k", "on-cuda or relu-ok").ret == pytest.ExitCode.OK


def test_keyword_matches_the_target_as_cnnbench_run_does(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml", cases=CASES + "  - {id: x, op: sigmoid, inputs: {x: [0.0]}, expect: {output: [0.5]}}\n"
    )
    pytester.runpytest("-p", "no:cacheprovider", "-k", "sigmoid").assert_outcomes(passed=2, deselected=7)


def test_an_xfail_report_is_its_reason_not_a_formatted_traceback(project: pytest.Pytester) -> None:
    reports = project.inline_run("-p", "no:cacheprovider", "-k", "known-bug").getreports(
        "pytest_runtest_logreport"
    )
    (xfailed,) = [r for r in reports if hasattr(r, "wasxfail")]
    # Formatting the traceback (what pytest does by default, then discards) parsed every frame's source file.
    assert str(xfailed.longrepr).startswith("documented upstream bug: output: 1 of 1 elements differ")
    assert "_report_outcome" not in str(xfailed.longrepr)

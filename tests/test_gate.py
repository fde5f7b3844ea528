"""The CI gate's pieces: the accepted-differences file, the noxfile sessions, the GitHub workflow, --kind, gate/run's
closing line, and that the numerics path never imports torchvision (the gate's venvs do not have it)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from repo import REPO
from synthetic_runs import check_row, make_run

from cnnbench.cli import main
from cnnbench.report.accepted import load_accepted

CASE = """
cases:
  - {id: relu, op: relu, devices: [cpu], inputs: {x: [-1.0, 2.0]}, expect: {output: [0.0, 2.0]}}
"""


def test_accepted_file_is_valid() -> None:
    accepted = load_accepted(REPO / "gate" / "accepted.yaml")
    assert all(entry.reason for entry in accepted.entries)


def test_gate_script_compares_with_the_accepted_file() -> None:
    script = (REPO / "gate" / "run").read_text()
    assert "accepted=gate/accepted.yaml" in script and script.count('--accepted "$accepted"') == 2
    assert "--allowlist" not in script


def test_gate_closing_line_counts_every_version_s_run(tmp_path: Path) -> None:
    # The closing line's Python once imported a load_run that the store no longer had, so gate/run failed last.
    script = (REPO / "gate" / "run").read_text()
    code = script.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    make_run(tmp_path / "reports" / "gate-1.0", [check_row("a"), check_row("b", status="xfail")])
    make_run(
        tmp_path / "reports" / "gate-2.0", [check_row("a", status="error"), check_row("b", status="xpass")]
    )
    done = subprocess.run(
        [sys.executable, "-", "1.0", "2.0"],
        check=False,
        input=code,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "gate: 2 passed, 1 failed, 1 skipped\n"


@pytest.mark.skipif(importlib.util.find_spec("nox") is None, reason="nox is not installed (dev extra)")
def test_noxfile_has_a_gate_session_per_torch_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--noxfile", str(REPO / "noxfile.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "gate-2.14.1" in done.stdout and "gate-2.13.0" in done.stdout


def test_github_workflow_runs_the_gate_per_torch_version() -> None:
    workflow = yaml.safe_load((REPO / "examples" / "ci" / "github-actions.yml").read_text())
    gate = workflow["jobs"]["gate"]
    assert gate["strategy"]["matrix"]["torch"] == ["2.14.1", "2.13.0"]
    steps = "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in gate["steps"])
    assert "cnnbench run cases/ --kind check" in steps
    assert '--format markdown >> "$GITHUB_STEP_SUMMARY"' in steps
    assert "actions/upload-artifact" in steps and "torchvision" not in steps
    assert "cnnbench compare" in str(workflow["jobs"]["compare"]["steps"])
    # Each version runs in shards (with a worker pool), merged before the comparison.
    assert gate["strategy"]["matrix"]["shard"] == [1, 2]
    assert "--shard ${{ matrix.shard }}/$SHARDS --workers auto" in steps
    compare_steps = str(workflow["jobs"]["compare"]["steps"])
    assert "cnnbench merge" in compare_steps and compare_steps.index("cnnbench merge") < compare_steps.index(
        "cnnbench compare"
    )


def test_numerics_path_imports_no_torchvision(write_case: Callable[..., Path], tmp_path: Path) -> None:
    cases = write_case(CASE)
    code = (
        "import sys\n"
        "import torch\n"
        "import cnnbench.cli, cnnbench.numerics.runner, cnnbench.report.tables, cnnbench.report.diff, cnnbench.numerics.repro\n"
        "import cnnbench.report.junit, cnnbench.execution.shard\n"
        f"status = cnnbench.cli.main(['run', {str(cases)!r}, '--kind', 'check', '--reports', {str(tmp_path)!r}])\n"
        f"cnnbench.cli.main(['report', '--reports', {str(tmp_path)!r}, '--format', 'junit', '-o', 'j.xml'])\n"
        "assert status == 0, status\n"
        "assert 'torchvision' not in sys.modules, 'torchvision was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_compare_and_report_need_no_torch(tmp_path: Path) -> None:
    run = make_run(tmp_path / "a", [check_row("conv")])
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "from cnnbench.cli import main\n"
        f"assert main(['compare', {str(run.path)!r}, {str(run.path)!r}]) == 0\n"
        f"assert main(['report', {str(run.path)!r}, '--format', 'markdown']) == 0\n"
        f"assert main(['report', {str(run.path)!r}, '--format', 'junit']) == 0\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_kind_filter(
    write_case: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = write_case(CASE)
    # No benchmark in the file: nothing selected, nothing ran (exit 5, issue 13), naming --kind among the filters.
    assert main(["run", str(cases), "--kind", "bench", "--no-save"]) == 5
    assert "--kind" in capsys.readouterr().err
    assert main(["run", str(cases), "--kind", "check", "--reports", str(tmp_path)]) == 0


def test_benchmark_variants_are_of_kind_bench() -> None:
    from cnnbench.casefile.load import load_text
    from cnnbench.casefile.select import select
    from cnnbench.casefile.variants import BenchVariant, Variant, expand, expand_benchmarks

    assert BenchVariant.kind == "bench" and Variant.kind == "check"
    loaded = load_text(
        "cases:\n  - {id: c, op: relu, devices: [cpu], inputs: {x: [1.0]}, expect: {output: [1.0]}}\n"
        "benchmarks:\n  - {id: b, op: relu, devices: [cpu], inputs: {x: {randn: [2, 3]}}}\n"
    )
    variants = [*expand(loaded.cases), *expand_benchmarks(loaded.benchmarks)]
    assert [v.id for v in select(variants, kind="bench")] == [
        v.id for v in variants if isinstance(v, BenchVariant)
    ]
    assert [v.id for v in select(variants, kind="check")] == ["c[cpu-float32]"]
    assert len(select(variants, kind="all")) == len(variants) == 2


def test_gate_writes_the_ledger_of_its_runs(tmp_path: Path) -> None:
    script = (REPO / "gate" / "run").read_text()
    loop = script.split("for fmt in markdown html; do\n", 1)[1].split("\ndone\n", 1)[0]
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "cnnbench").exists():
        pytest.skip("no cnnbench entry point beside this Python")
    make_run(tmp_path / "reports" / "gate-1.0", [check_row("a", budget_used=0.125)])
    make_run(tmp_path / "reports" / "gate-2.0", [check_row("a", budget_used=0.5)], {"torch_version": "2.0"})
    code = f"set -euo pipefail\nBIN={bin_dir}\nstatus=0\nversions=(1.0 2.0)\nfor fmt in markdown html; do\n{loop}\ndone\nexit $status\n"
    done = subprocess.run(
        ["bash", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    markdown = (tmp_path / "reports" / "gate-ledger.md").read_text()
    assert "| conv2d | float32 | cpu | 0.125 / 0.125 | 0.5 / 0.5 ▲4x |" in markdown
    assert "gate-2.0" in (tmp_path / "reports" / "gate-ledger.html").read_text()
